"""Edge -> central over TLS, against a real Mosquitto whose TLS listener wants client certificates (made at test
time): the edge's paho forwarder and the central's paho receiver both connect with mqtts://, the CA and their
certificates, and every sample arrives once; an edge with the wrong CA forwards nothing and says why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from plantlink.edge.node import EdgeNode
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.connectors.mosquitto import MosquittoServer, mosquitto
from tests.connectors.pki import Pki
from tests.edge.harness import burst, central_yaml, count_samples, edge_yaml
from tests.waiting import wait_for


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker", tls=True, require_certificate=True) as srv:
        yield srv


def over_tls(srv: MosquittoServer, ca: Path | None = None) -> str:
    p: Pki | None = srv.pki
    assert p is not None
    return (f"{{mqtt: 'mqtts://127.0.0.1:{srv.tls_port}', tls: {{ca_file: {ca or p.ca}, cert_file: {p.client_cert}, "
            f"key_file: {p.client_key}}}}}")


async def test_an_edge_forwards_to_its_central_over_tls(broker: MosquittoServer, tmp_path: Path) -> None:
    central = Runtime(parse_plant(central_yaml(0, broker=over_tls(broker))), tmp_path / "central",
                      flush_interval=0.1)
    edge = EdgeNode(parse_plant(edge_yaml(0, 1, enabled=False, broker=over_tls(broker))), tmp_path / "edge")
    await central.start()
    await edge.start()
    try:
        for i in range(10):
            edge.ingest(burst(i * 50, 50))
        assert central.historian is not None
        h = central.historian
        await wait_for(lambda: count_samples(h, sorted(central.tag_ids.values()))[0] >= 500 and
                       edge.queue.backlog_rows == 0, what="500 samples at the central over TLS")
        assert count_samples(h, sorted(central.tag_ids.values())) == (500, 500)
        assert edge.forwarder is not None and edge.forwarder.connected
    finally:
        await edge.stop()
        await central.stop()


async def test_an_edge_with_the_wrong_ca_forwards_nothing_and_says_why(broker: MosquittoServer,
                                                                       tmp_path: Path) -> None:
    assert broker.pki is not None
    edge = EdgeNode(parse_plant(edge_yaml(0, 1, enabled=False, broker=over_tls(broker, broker.pki.other_ca))),
                    tmp_path / "edge")
    await edge.start()
    try:
        edge.ingest(burst(0, 50))
        await wait_for(lambda: edge.status()["forwarder"]["last_error"] is not None, what="the forwarder's error")
        error = edge.status()["forwarder"]["last_error"]
        assert "certificate verify failed" in error and "tls.ca_file" in error
        assert edge.queue.backlog_rows == 50 and not edge.status()["forwarder"]["connected"]
    finally:
        await edge.stop()
