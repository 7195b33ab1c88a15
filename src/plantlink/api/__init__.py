"""The HTTP API: REST under /api/v1, a WebSocket stream, OpenAPI at /openapi.json. See ``app.create_app``."""
