"""The edge queue's bound: ``drop_oldest`` drops the oldest segments and counts their samples;
``stop_reading`` stops the connectors near full and starts new ones once the central took the backlog; the
"nearly full" alarm is raised at ``alarm_at`` and shown by the central."""

from __future__ import annotations

import json
from pathlib import Path

from plantlink.edge.node import EdgeNode
from plantlink.edge.queue import EdgeQueue
from plantlink.engines.alarms.derived import edge_alarm_key
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.model.edge import QueueSettings
from plantlink.runtime import Runtime
from tests.connectors.mosquitto import MosquittoServer
from tests.edge.harness import burst, central_yaml, count_samples, edge_yaml, free_port
from tests.waiting import wait_for

SMALL = "max_size: 256KiB, segment_size: 64KiB"


async def test_drop_oldest_keeps_the_newest_and_counts_what_it_dropped(tmp_path: Path) -> None:
    q = EdgeQueue(tmp_path / "q", QueueSettings(max_size=256 * 2**10, segment_size=64 * 2**10,
                                                when_full="drop_oldest"))
    q.open()
    q.start(lambda: None)
    try:
        produced = 0
        for i in range(120):  # about 1.4 MiB into 256 KiB
            assert q.append(burst(produced, 500))
            produced += 500
            await wait_for(lambda i=i: q.committed_seq == i + 1, what=f"batch {i + 1} durable")
            assert q.wal.used_bytes <= 256 * 2**10
        assert q.committed_rows == produced
        assert q.dropped_rows > 0 and q.dropped_rows % 500 == 0
        assert q.dropped_rows + q.backlog_rows == produced and q.acked_rows == 0
        left = q.read(q.acked_seq, 1000)
        assert [s for s, _ in left] == list(range(q.acked_seq + 1, 121))  # the newest, in order, nothing else
        assert sum(b.num_rows for _, b in left) == q.backlog_rows
        assert left[-1][1].column("value")[-1].as_py() == produced - 1
        assert left[0][1].column("value")[0].as_py() == q.dropped_rows  # the oldest were dropped
    finally:
        await q.stop()
    again = EdgeQueue(tmp_path / "q", q.settings)  # the counts survive a restart
    again.open()
    assert (again.dropped_rows, again.backlog_rows, again.committed_rows) == (q.dropped_rows, q.backlog_rows,
                                                                              produced)


async def test_stop_reading_pauses_the_connectors_raises_the_alarm_and_loses_nothing(tmp_path: Path) -> None:
    for d in ("broker", "local"):
        (tmp_path / d).mkdir()
    broker = MosquittoServer(free_port(), tmp_path / "broker", persistence=True)  # not started yet: link down
    local = MosquittoServer(free_port(), tmp_path / "local")  # the device's broker: up, silent
    await local.start()
    edge = EdgeNode(parse_plant(edge_yaml(broker.port, local.port, queue=SMALL + ", when_full: stop_reading, "
                                          "alarm_at: 50%")), tmp_path / "edge")
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    await edge.start()
    try:
        assert list(edge.connectors) == ["local"]
        first = edge.connectors["local"]
        await wait_for(lambda: first.health.state.value == "connected", what="the edge's device connected")
        produced = 0
        while not edge.paused:
            if edge.queue.append(burst(produced, 500)):
                produced += 500
            await wait_for(lambda n=produced: edge.queue.committed_rows == n, what="the batch durable")
            await edge.check_queue()
            assert produced < 500 * 100, "never paused"
        assert edge.queue_alarm and edge.forwarder.status()["queue_alarm"]
        # paused at once; the connectors stop just after (CI run s2 saw "connected" at the next line)
        await wait_for(lambda: first.health.state.value == "stopped", what="the edge's connectors stopped")
        assert edge.queue.dropped_rows == 0
        assert edge.queue.fill >= 0.5
        await broker.start()
        await central.start()
        await wait_for(lambda: not edge.paused and edge.queue.backlog_rows == 0, timeout=60,
                       what="the backlog forwarded and the connectors reading again")
        assert edge.connectors["local"] is not first and edge.connectors["local"].health.state.value != "stopped"
        assert central.historian is not None
        await wait_for(lambda: count_samples(central.historian, sorted(central.tag_ids.values()))[0] >= produced,
                       what="every sample at the central")
        assert count_samples(central.historian, sorted(central.tag_ids.values())) == (produced, produced)
        assert edge.queue.wal.stats.refused_rows == 0 and edge.queue.dropped_rows == 0
    finally:
        await edge.stop()
        await central.stop()
        await broker.stop()
        await local.stop()


async def test_the_central_shows_an_edge_s_nearly_full_queue(tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    broker = MosquittoServer(free_port(), tmp_path / "broker", persistence=True)
    await broker.start()
    central = Runtime(parse_plant(central_yaml(broker.port)), tmp_path / "central", flush_interval=0.1)
    await central.start()
    edge_plant = parse_plant(edge_yaml(broker.port, free_port(), enabled=False, queue=SMALL + ", alarm_at: 10%"))
    edge = EdgeNode(edge_plant, tmp_path / "edge")
    await edge.forwarder.stop()  # nothing is forwarded: the backlog stays
    try:
        edge.queue.open()
        edge.queue.start(edge.forwarder.wake)
        for i in range(4):
            edge.queue.append(burst(i * 500, 500))
        await wait_for(lambda: edge.queue.committed_rows == 2000, what="the batches durable")
        assert edge.queue.fill >= 0.1
        await edge.check_queue()
        assert edge.queue_alarm
        await broker.publish("plantlink/edge/e1/status", json.dumps(edge.forwarder.status()).encode(), retain=True)
        assert central.services is not None
        await wait_for(lambda: central.status()["edges"]["e1"]["queue_alarm"], what="the central sees the alarm")
        report = central.services.health.report(Principal("v", {"s1": "viewer"}))
        assert any("e1: its store-and-forward queue is" in r for r in report.reasons), report.reasons
        assert report.edges["e1"]["backlog_rows"] == 2000
        key = edge_alarm_key("s1", "e1")  # the central's alarm engine: the edge's queue alarm, raised
        assert central.alarm_engine is not None
        await wait_for(lambda: central.alarm_engine.condition(key), what="the edge's queue alarm raised")
        edge.queue_alarm = False
        await broker.publish("plantlink/edge/e1/status", json.dumps(edge.forwarder.status()).encode(), retain=True)
        await wait_for(lambda: not central.alarm_engine.condition(key), what="the edge's queue alarm cleared")
    finally:
        await edge.queue.stop()
        await central.stop()
        await broker.stop()


async def test_a_read_from_the_cursor_again_gives_every_batch_after_it(tmp_path: Path) -> None:
    """After a reconnect the forwarder reads again from the cursor: batches read before are given again."""
    q = EdgeQueue(tmp_path / "q", QueueSettings(max_size=256 * 2**10, segment_size=64 * 2**10))
    q.open()
    q.start(lambda: None)
    try:
        for i in range(30):
            q.append(burst(i * 100, 100))
        await wait_for(lambda: q.committed_seq == 30, what="30 batches durable")
        assert [s for s, _ in q.read(0, 10)] == list(range(1, 11))
        assert [s for s, _ in q.read(10, 10)] == list(range(11, 21))
        assert q.confirm(5) == 5 and q.acked_rows == 500
        assert [s for s, _ in q.read(5, 100)] == list(range(6, 31))  # again from the cursor, across segments
        assert [s for s, _ in q.read(29, 100)] == [30]
    finally:
        await q.stop()
