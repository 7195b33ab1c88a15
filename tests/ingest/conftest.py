"""The ingest tests' nats-server: one per test, on free ports, its JetStream store in the test's temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.natsserver import NatsServer


@pytest.fixture
async def nats_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = NatsServer(tmp_path / "nats")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
