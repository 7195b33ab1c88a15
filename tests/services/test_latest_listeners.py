"""ONE bus subscription for live values: the latest-value cache folds every batch in, then offers it to its
listeners (the live stream's hub) through a bounded, lossy queue each; a slow listener loses its oldest
batches, never slows the cache; batches come out in arrival order."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from plantlink.api.live import LiveHub
from plantlink.bus.inproc import InProcBus
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services.latest import LatestValues
from tests.api.conftest import PLANT
from tests.waiting import wait_for


def _batch(tag: int, value: float) -> pa.RecordBatch:
    return numeric_batch([tag], [now_us()], [value], Quality.GOOD)


async def test_a_listener_gets_folded_batches_in_order_and_a_slow_one_drops_the_oldest() -> None:
    bus, latest = InProcBus(), LatestValues()
    latest.start(bus)
    fast, slow = latest.listen("fast", maxsize=100), latest.listen("slow", maxsize=3)
    for v in range(10):
        bus.publish(_batch(1, float(v)))
    await wait_for(lambda: latest.tick == 10 and fast.pending() == 10, what="folded and offered")
    assert latest.table([1]).column("value").to_pylist() == [9.0]  # folded before it is offered
    await latest.stop()  # closes the listeners: what they hold is still delivered
    got_fast = [b.column("value")[0].as_py() async for b in fast]
    got_slow = [b.column("value")[0].as_py() async for b in slow]
    assert got_fast == [float(v) for v in range(10)]
    assert got_slow == [7.0, 8.0, 9.0] and slow.dropped == 7
    assert [s.name for s in bus._subs] == []


async def test_the_live_hub_reads_the_cache_not_the_bus(tmp_path: Path) -> None:
    rt = Runtime(parse_plant(PLANT, "test-plant.yaml"), tmp_path / "data")
    await rt.start()
    hub = LiveHub(rt)
    try:
        before = sorted(s.name for s in rt.bus._subs)  # type: ignore[attr-defined]
        await hub.start()
        assert sorted(s.name for s in rt.bus._subs) == before  # type: ignore[attr-defined]
        assert before.count("latest") == 1 and rt.bus._subs[0].name == "latest"  # type: ignore[attr-defined]
        tag = rt.tag_ids["windsor/a1/l1/m1/temp"]
        rt.bus.publish(_batch(tag, 21.5))
        await wait_for(lambda: hub.batches >= 1, what="the hub fanned the batch out")
        assert rt.latest.table([tag]).column("value").to_pylist() == [21.5]
    finally:
        await hub.stop()
        await rt.stop()


async def test_a_listener_that_keeps_up_gets_each_batch_at_once_else_in_its_queue_in_order() -> None:
    bus, latest = InProcBus(), LatestValues()
    latest.start(bus)
    seen: list[float] = []
    listener = latest.listen("hub", maxsize=100, at_once=lambda b: seen.append(b.column("value")[0].as_py()))
    bus.publish(_batch(1, 0.0))
    await wait_for(lambda: seen == [0.0], what="handed over at once")
    for v in range(1, 6):  # a burst: the cache is behind the bus, so the batches are queued, in order
        bus.publish(_batch(1, float(v)))
    await wait_for(lambda: latest.tick == 6, what="folded")
    assert seen == [0.0] and listener.pending() == 5
    bus.publish(_batch(1, 6.0))  # caught up, but batches wait in the queue: queued behind them
    await wait_for(lambda: latest.tick == 7, what="folded")
    await latest.stop()
    assert [b.column("value")[0].as_py() async for b in listener] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
