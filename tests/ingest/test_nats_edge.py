"""``plantlink edge`` forwarding natively to NATS JetStream (``edge: {nats: {url, site}}``): its disk queue keeps
the batches while NATS is down (or has no stream yet), they go into the stream once it is back, and a worker
stores every sample once."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest

from plantlink.edge.node import EdgeNode
from plantlink.ingest.stream import STREAM, consumer_name
from plantlink.ingest.worker import IngestWorker
from plantlink.model import parse_plant
from tests.edge.harness import burst, central_yaml, edge_yaml
from tests.ingest.natsserver import NatsServer
from tests.ingest.rig import count_dir
from tests.ingest.test_worker import settings
from tests.waiting import wait_for

pytestmark = pytest.mark.service


def nats_edge_yaml(url: str) -> str:
    yaml = edge_yaml(1, 1, enabled=False)
    mqtt = "central: {mqtt: mqtt://127.0.0.1:1}"
    assert mqtt in yaml
    return yaml.replace(mqtt, f"nats: {{url: '{url}', site: s1}}")


async def test_a_native_nats_edge_keeps_its_batches_through_an_outage(nats_server: NatsServer,
                                                                     tmp_path: Path) -> None:
    edge = EdgeNode(parse_plant(nats_edge_yaml(nats_server.url)), tmp_path / "edge")
    await edge.start()
    produced = 0
    worker: IngestWorker | None = None
    nc = None
    try:
        for _ in range(5):  # no stream yet (no worker ever ran): nothing is acknowledged, all kept
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: edge.queue.committed_rows == produced and edge.forwarder.last_error,
                       what="the edge refused by a NATS without the stream")
        assert edge.queue.backlog_rows == produced
        worker = IngestWorker(parse_plant(central_yaml(1)), tmp_path / "w1", settings(nats_server, "w1"))
        await worker.start()  # creates the stream: the edge's backlog goes in
        await wait_for(lambda: edge.queue.backlog_rows == 0, what="the backlog forwarded")
        await nats_server.stop()
        for _ in range(5):
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: edge.queue.committed_rows == produced and not edge.forwarder.connected,
                       what="NATS down: kept in the edge's queue")
        assert edge.queue.backlog_rows > 0 and edge.status()["forwarder"]["last_error"]
        await nats_server.start()
        await wait_for(lambda: edge.queue.backlog_rows == 0, timeout=40, what="the edge caught up")
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()

        async def drained() -> bool:
            i = await js.consumer_info(STREAM, consumer_name("s1"))
            return bool(i.num_pending == 0 and i.num_ack_pending == 0)

        await wait_for(drained, what="every batch stored and acknowledged")
        w = worker
        assert w is not None
        await wait_for(lambda: w.status()["edges"].get("e1", {}).get("backlog_rows") == 0,
                       what="the edge's status in the worker's health")
        assert w.status()["edges"]["e1"]["online"]
    finally:
        await edge.stop()
        if worker is not None:
            await worker.stop()
        if nc is not None:
            await nc.close()
    rows, pairs = count_dir(tmp_path / "w1")
    assert rows == len(pairs) == produced
