"""Edge -> central over TLS, against a real Mosquitto whose TLS listener wants client certificates (made at test
time): the edge's paho forwarder and the central's paho receiver both connect with mqtts://, the CA and their
certificates, and every sample arrives once; an edge with the wrong CA, or without its certificate, forwards
nothing and says why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
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


def over_tls(srv: MosquittoServer, ca: Path | None = None, cert: bool = True) -> str:
    p: Pki | None = srv.pki
    assert p is not None
    mine = f", cert_file: {p.client_cert}, key_file: {p.client_key}" if cert else ""
    return f"{{mqtt: 'mqtts://127.0.0.1:{srv.tls_port}', tls: {{ca_file: {ca or p.ca}{mine}}}}}"


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


@pytest.mark.parametrize(("wrong", "says"), [
    ("ca", ["certificate verify failed", "tls.ca_file"]),
    ("no certificate", ["tlsv13 alert certificate required", "give tls.cert_file and tls.key_file"])])
async def test_an_edge_refused_by_tls_forwards_nothing_and_says_why(broker: MosquittoServer, tmp_path: Path,
                                                                    wrong: str, says: list[str]) -> None:
    assert broker.pki is not None
    central = (over_tls(broker, broker.pki.other_ca) if wrong == "ca" else over_tls(broker, cert=False))
    edge = EdgeNode(parse_plant(edge_yaml(0, 1, enabled=False, broker=central)), tmp_path / "edge")
    await edge.start()
    try:
        edge.ingest(burst(0, 50))
        def error() -> str:
            return str(edge.status()["forwarder"]["last_error"])

        # (while the connection is being given up, the error is first paho's bare "disconnected: ...")
        await wait_for(lambda: all(text in error() for text in says), what=f"the forwarder's error saying {says}")
        await wait_for(lambda: edge.queue.committed_rows == 50, what="the burst durable in the edge's queue")
        assert edge.queue.backlog_rows == 50 and not edge.status()["forwarder"]["connected"]  # none forwarded
    finally:
        await edge.stop()
