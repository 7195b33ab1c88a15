"""Edge -> central in one process, against a real Mosquitto: every sample the edge's queue accepted is stored
once at the central; a broker restart in the middle of a stream loses and duplicates nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from plantlink.edge.forward import Forwarder, central_topic, stored_topic
from plantlink.edge.node import EdgeNode
from plantlink.edge.payload import stream_of
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.connectors.mosquitto import Edge, MosquittoServer, mosquitto
from tests.edge.harness import burst, central_yaml, count_samples, edge_yaml
from tests.waiting import wait_for


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker", persistence=True) as srv:
        yield srv


def stored(rt: Runtime) -> tuple[int, int]:
    assert rt.historian is not None
    return count_samples(rt.historian, sorted(rt.tag_ids.values()))


async def test_a_stream_reaches_the_central_once_across_a_broker_restart(broker: MosquittoServer,
                                                                         tmp_path: Path) -> None:
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    edge = EdgeNode(parse_plant(edge_yaml(broker.port, 1, enabled=False)), tmp_path / "edge")
    await central.start()
    await edge.start()
    try:
        produced = 0
        for _ in range(20):
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: stored(central)[0] >= 500, what="the first 500 samples at the central")
        await broker.stop()
        for _ in range(20):  # the link is down: kept in the edge's queue
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: edge.queue.committed_rows == produced, what="the bursts durable in the edge queue")
        assert edge.queue.backlog_rows > 0
        await broker.start()
        for _ in range(20):
            edge.ingest(burst(produced, 50))
            produced += 50
        await wait_for(lambda: stored(central)[0] >= produced and edge.queue.backlog_rows == 0, timeout=60,
                       what=f"{produced} samples at the central")
        assert edge.queue.committed_rows == produced
        assert stored(central) == (produced, produced)  # every sample, once
        edges = central.status()["edges"]
        await wait_for(lambda: central.status()["edges"]["e1"]["backlog_rows"] == 0, what="the edge's status")
        edges = central.status()["edges"]
        assert edges["e1"]["online"] and edges["e1"]["rows"] == produced and edges["e1"]["dropped_rows"] == 0
    finally:
        await edge.stop()
        await central.stop()


async def test_a_queue_made_anew_is_not_taken_for_duplicates(broker: MosquittoServer, tmp_path: Path) -> None:
    """An edge whose queue directory was lost numbers its batches from 1 again: a new epoch, stored."""
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    await central.start()
    try:
        for run, start in enumerate((0, 1000)):
            edge = EdgeNode(parse_plant(edge_yaml(broker.port, 1, enabled=False)), tmp_path / f"edge{run}")
            await edge.start()
            try:
                for i in range(10):
                    edge.ingest(burst(start + i * 100, 100))
                await wait_for(lambda e=edge: e.queue.committed_seq == 10 and e.queue.backlog_rows == 0,
                               what="the batches forwarded")
            finally:
                await edge.stop()
            await wait_for(lambda n=start + 1000: stored(central)[0] >= n, what="the batches at the central")
        assert stored(central) == (2000, 2000)
        assert central.edge_receiver is not None
        assert central.edge_receiver.counts["e1"]["duplicates"] == 0 and len(central.edge_receiver.seen) == 2
    finally:
        await central.stop()


async def test_a_batch_leaves_the_edge_queue_when_the_central_says_it_is_stored(broker: MosquittoServer,
                                                                                tmp_path: Path) -> None:
    """With a plantlink central (its marker says ``"confirms": "central"``) the broker's PUBACK does not move the
    queue's cursor: the central's stored floor does, for this queue's epoch only; a floor that cannot be read is
    ignored. A marker without ``confirms`` (nats-server's MQTT gateway, durable itself): the PUBACK does."""
    root = "plantlink/edge"
    await broker.publish(central_topic(root), json.dumps({"client_id": "c", "confirms": "central"}).encode(),
                         retain=True)
    edge = EdgeNode(parse_plant(edge_yaml(broker.port, 1, enabled=False)), tmp_path / "edge")
    await edge.start()
    q, fwd = edge.queue, edge.forwarder
    assert isinstance(fwd, Forwarder)
    try:
        for i in range(10):
            edge.ingest(burst(i * 50, 50))
        await wait_for(lambda: fwd.broker_seq == 10, what="the broker acknowledged the 10 batches")
        assert (q.acked_seq, q.backlog_rows) == (0, 500)  # kept: the central has not said it stored them
        stored = stored_topic(root, "e1")
        for payload in (b"not json", b'{"stream": "e1@other", "floor": 9}', b'{"floor": 9}'):
            await broker.publish(stored, payload)
        await broker.publish(stored, json.dumps({"stream": stream_of("e1", q.epoch), "floor": 4}).encode())
        await wait_for(lambda: q.acked_seq == 4, what="the cursor moved to the central's floor")
        assert (q.acked_rows, q.backlog_rows) == (200, 300)
        await broker.publish(stored, json.dumps({"stream": stream_of("e1", q.epoch), "floor": 99}).encode())
        await wait_for(lambda: q.acked_seq == 10, what="never past what was logged")
        assert q.backlog_rows == 0 and q.acked_rows == 500
        await broker.publish(central_topic(root), b'{"client_id": "nats"}', retain=True)  # a durable broker
        await wait_for(lambda: not fwd.confirm_by_central, what="the marker without confirms seen")
        edge.ingest(burst(500, 50))
        await wait_for(lambda: q.acked_seq == 11 and q.backlog_rows == 0, what="the PUBACK moved the cursor")
    finally:
        await edge.stop()


async def test_a_restarted_central_tells_each_edge_its_floor_before_any_new_batch(broker: MosquittoServer,
                                                                                  tmp_path: Path) -> None:
    """The stored floor of each edge's newest queue is in the central's state file: a central that restarts
    publishes it at once (an edge whose last batches were stored just before a crash, but not yet confirmed,
    need not wait ``resend_after`` and send them again)."""
    root = "plantlink/edge"
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    edge = EdgeNode(parse_plant(edge_yaml(broker.port, 1, enabled=False)), tmp_path / "edge")
    await central.start()
    await edge.start()
    try:
        for i in range(10):
            edge.ingest(burst(i * 50, 50))
        await wait_for(lambda: edge.queue.acked_seq == 10, what="the 10 batches confirmed by the central")
        stream = stream_of("e1", edge.queue.epoch)
    finally:
        await edge.stop()
        await central.stop()
    await broker.publish(stored_topic(root, "e1"), b"", retain=True)  # the retained floor gone (as a crash before it)
    watch = Edge(broker.port, [stored_topic(root, "e1")])
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    await central.start()
    try:
        def told() -> bool:
            return any(p and json.loads(p) == {"stream": stream, "floor": 10} for _, p, _ in watch.received)

        await wait_for(told, what=f"the floor of {stream} published without a new batch: {watch.received}")
    finally:
        watch.close()
        await central.stop()


async def test_batches_a_stale_marker_let_through_are_resent_and_a_dropped_gap_does_not_hold_the_floor(
        broker: MosquittoServer, tmp_path: Path) -> None:
    """A retained marker with no central session behind it (the central's client id changed): the broker takes
    the batches and drops them. The edge keeps them; its full queue drops the oldest. Once a central runs, its
    heartbeat and a floor that does not move make the edge send again; the batches' low mark lets the central's
    floor pass the gap the edge dropped, so the edge's backlog ends at zero with every kept sample stored once."""
    root = "plantlink/edge"
    await broker.publish(central_topic(root), json.dumps({"client_id": "gone", "confirms": "central"}).encode(),
                         retain=True)
    yaml = edge_yaml(broker.port, 1, enabled=False, queue="max_size: 256KiB, segment_size: 64KiB",
                     extra="resend_after: 1s")
    edge = EdgeNode(parse_plant(yaml), tmp_path / "edge")
    await edge.start()
    q, fwd = edge.queue, edge.forwarder
    assert isinstance(fwd, Forwarder)
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    try:
        produced = 0
        while q.dropped_rows == 0:
            edge.ingest(burst(produced, 500))
            produced += 500
            await wait_for(lambda p=produced: q.committed_rows == p, what="the burst durable")
        await wait_for(lambda: fwd.broker_seq == q.committed_seq, what="the broker took every batch (and dropped)")
        kept = produced - q.dropped_rows
        assert q.backlog_rows == kept and q.acked_rows == 0
        await central.start()
        await wait_for(lambda: q.backlog_rows == 0, timeout=60, what="the kept batches stored at the central")
        assert fwd.resends >= 1
        await wait_for(lambda: stored(central)[0] >= kept, what="the kept samples in the central's historian")
        assert stored(central) == (kept, kept)
        st = central.status()["edges"]["e1"]
        assert st["stored_seq"] == q.committed_seq  # over the gap the edge dropped
    finally:
        await edge.stop()
        await central.stop()
