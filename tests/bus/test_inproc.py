"""The in-process bus passes the bus contract suite (``plantlink.testing.bus``); what only it does is below."""

from __future__ import annotations

import asyncio

from plantlink.bus import InProcBus, open_bus
from plantlink.testing.bus import BusContract, batch, number


class TestInProcBus(BusContract):
    def make_bus(self) -> InProcBus:
        bus = open_bus("inproc")  # through the plugin registry, as the runtime does
        assert isinstance(bus, InProcBus)
        return bus


async def test_published_counts_samples() -> None:
    bus = InProcBus()
    for k in range(5):
        bus.publish(batch(k))
    assert bus.published == 5


async def test_live_subscribers_are_served_first() -> None:
    """A bounded (live) subscriber is woken before lossless ones subscribed earlier."""
    bus = InProcBus()
    order: list[str] = []

    async def consume(sub) -> None:  # type: ignore[no-untyped-def]
        async for b in sub:
            assert number(b) == 1
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


async def test_backlog_is_the_bytes_the_slowest_lossless_subscriber_has_not_taken() -> None:
    """What the write-ahead log bounds: the lossy (live) subscriber does not count, the slowest lossless one does."""
    bus = InProcBus()
    assert bus.backlog_bytes() == 0
    fast, slow, live = bus.subscribe("engine"), bus.subscribe("historian"), bus.subscribe("live", maxsize=2)
    sent = [batch(k) for k in range(6)]
    for b in sent:
        bus.publish(b)
    sizes = [b.get_total_buffer_size() for b in sent]
    assert bus.backlog_bytes() == sum(sizes)
    got = aiter(fast)
    for _ in range(6):
        await anext(got)
    assert bus.backlog_bytes() == sum(sizes)  # the historian has taken nothing yet
    taken = aiter(slow)
    for _ in range(4):
        await anext(taken)
    assert bus.backlog_bytes() == sum(sizes[4:])
    assert live.pending() == 2 and live.dropped == 4
