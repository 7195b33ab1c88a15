"""Edge to central: ``plantlink edge`` forwards its connectors' batches over MQTT through a disk-backed
store-and-forward queue (``queue``, ``forward``, ``node``); a central ``plantlink run`` with ``edges:`` stores
them (``central``). The wire format is in ``payload``; docs/edge.md explains the whole."""
