"""Publishing plantlink's tags to an MQTT broker: a Unified Namespace (``uns``) and, optionally, a Sparkplug B
edge node. Needs the ``mqtt`` extra (aiomqtt, protobuf)."""
