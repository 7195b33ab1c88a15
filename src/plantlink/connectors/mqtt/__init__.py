"""MQTT connector (docs/mqtt.md)."""
