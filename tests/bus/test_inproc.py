from __future__ import annotations

import asyncio

import numpy as np

from plantlink.bus import InProcBus
from plantlink.samples import Quality, numeric_batch


def batch(k: int):  # type: ignore[no-untyped-def]
    return numeric_batch(np.array([k]), k, np.array([float(k)]), Quality.GOOD)


async def test_lossless_subscriber_gets_every_batch_in_order() -> None:
    bus = InProcBus()
    sub = bus.subscribe("store")
    for k in range(1000):
        bus.publish(batch(k))
    got: list[int] = []

    async def consume() -> None:
        async for b in sub:
            got.append(b.column("tag_id")[0].as_py())

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(task, 5)
    assert got == list(range(1000))
    assert bus.published == 1000


async def test_lossy_subscriber_drops_oldest_and_counts() -> None:
    bus = InProcBus()
    live = bus.subscribe("live", maxsize=10)
    store = bus.subscribe("store")
    for k in range(25):
        bus.publish(batch(k))
    assert live.pending() == 10 and live.dropped == 15
    assert store.pending() == 25
    first = await anext(aiter(live))
    assert first.column("tag_id")[0].as_py() == 15  # the newest ten survive


async def test_live_subscribers_are_served_first() -> None:
    """A bounded (live) subscriber is woken before lossless ones subscribed earlier."""
    bus = InProcBus()
    order: list[str] = []

    async def consume(sub) -> None:  # type: ignore[no-untyped-def]
        async for _ in sub:
            order.append(sub.name)

    subs = [bus.subscribe("store"), bus.subscribe("engine"), bus.subscribe("live", maxsize=8)]
    tasks = [asyncio.create_task(consume(s)) for s in subs]
    await asyncio.sleep(0)
    bus.publish(batch(1))
    await asyncio.sleep(0.01)
    assert order == ["live", "store", "engine"]
    for s in subs:
        s.close()
    await asyncio.gather(*tasks)
