"""An unchanged ``plantlink edge`` (the MQTT forwarder) pointed at nats-server's MQTT port: its batches land in
the samples stream (topic ``plantlink/samples/<site>/<edge>/batch`` is subject ``plantlink.samples.<site>.<edge>
.batch``) and an ingest worker stores every sample once, across a NATS restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import paho.mqtt.client as paho
import pytest

from plantlink.edge.forward import central_topic
from plantlink.edge.node import EdgeNode
from plantlink.ingest.stream import STREAM, consumer_name, ensure_stream, mqtt_root
from plantlink.ingest.worker import IngestWorker
from plantlink.model import parse_plant
from tests.edge.harness import burst, central_yaml, edge_yaml
from tests.ingest.natsserver import NatsServer
from tests.ingest.rig import count_dir
from tests.ingest.test_worker import settings, stored
from tests.waiting import wait_for

pytestmark = pytest.mark.service


def retain_marker(port: int, topic: str) -> None:
    """What an edge waits for before it forwards: the central's retained marker (here published once by hand)."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="plantlink-test-marker")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.publish(topic, b'{"client_id": "nats"}', qos=1, retain=True).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


async def test_an_mqtt_edge_delivers_through_nats_into_the_stream(nats_server: NatsServer, tmp_path: Path) -> None:
    root = mqtt_root("s1")
    yaml = edge_yaml(nats_server.mqtt_port, 1, enabled=False,
                     broker=f"{{mqtt: 'mqtt://127.0.0.1:{nats_server.mqtt_port}', root: {root}}}")
    assert f"root: {root}" in yaml
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_stream(nc.jetstream())  # before the edge sends: the stream captures what arrives from then on
    await asyncio.to_thread(retain_marker, nats_server.mqtt_port, central_topic(root))
    edge = EdgeNode(parse_plant(yaml), tmp_path / "edge")
    worker = IngestWorker(parse_plant(central_yaml(1)), tmp_path / "w1", settings(nats_server, "w1"))
    await edge.start()
    await worker.start()
    produced = 0
    try:
        for _ in range(10):
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: edge.queue.backlog_rows == 0 and edge.queue.committed_rows == produced,
                       what="the edge's queue forwarded")
        await wait_for(lambda: stored(worker) >= produced, what="the worker stored the edge's batches")
        await nats_server.stop()
        for _ in range(10):  # NATS down: kept in the edge's queue
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: edge.queue.committed_rows == produced, what="durable in the edge queue")
        assert edge.queue.backlog_rows > 0
        await nats_server.start()
        await wait_for(lambda: edge.queue.backlog_rows == 0, timeout=40, what="the edge caught up")
        js = nc.jetstream()

        async def drained() -> bool:
            i = await js.consumer_info(STREAM, consumer_name("s1"))
            return bool(i.num_pending == 0 and i.num_ack_pending == 0)

        await wait_for(drained, what="the worker caught up: every batch stored and acknowledged")
        w = worker
        await wait_for(lambda: w.status()["edges"].get("e1", {}).get("backlog_rows") == 0,
                       what="the edge's status in the worker's health")
        assert w.status()["edges"]["e1"]["online"]
        info = await js.stream_info(STREAM)
        assert info.state.messages >= 20
    finally:
        await edge.stop()
        await worker.stop()
        await nc.close()
    rows, pairs = count_dir(tmp_path / "w1")
    assert rows == len(pairs) == produced
