"""Central ingest on NATS JetStream: the samples stream, ``plantlink ingest`` workers and per-site leases
(docs/scale-out.md)."""
