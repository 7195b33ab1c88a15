"""``BusContract``: what every ``plantlink.buses`` plugin must do (``plantlink.bus.base``).

Subclass it in a test module, name the subclass ``Test...`` and implement ``make_bus`` (it may be a coroutine
for a bus that connects to a broker)::

    class TestMyBus(BusContract):
        def make_bus(self):
            return MyBus(url="nats://127.0.0.1:4222")

The suite checks: every subscriber gets every batch, unchanged and in publish order; ``publish`` never blocks,
even when no one reads; a bounded subscription (``maxsize``) keeps the newest batches and counts the dropped
ones; a slow subscriber does not hold up the others and still gets everything (lossless); a subscriber only
sees what is published after it subscribed; ``Subscription.close`` ends its iteration and ``Bus.close`` ends
every subscription's.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa
import pytest
import pytest_asyncio

from plantlink.bus.base import Bus, Subscription
from plantlink.samples import Quality, numeric_batch
from plantlink.testing.waiting import TIMEOUT, wait_until


def batch(k: int) -> pa.RecordBatch:
    """Batch number ``k``: one sample of tag ``k`` at ``k`` microseconds, value ``k``."""
    return numeric_batch([k], k, [float(k)], Quality.GOOD)


def number(b: pa.RecordBatch) -> int:
    return int(b.column("tag_id")[0].as_py())


class Consumer:
    """Reads a subscription in a task, keeping what it got; ``gate`` (when given) holds it before each batch."""

    def __init__(self, sub: Subscription, gate: asyncio.Event | None = None):
        self.sub = sub
        self.got: list[pa.RecordBatch] = []
        self.gate = gate
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for b in self.sub:
            if self.gate is not None:
                await self.gate.wait()
            self.got.append(b)

    @property
    def numbers(self) -> list[int]:
        return [number(b) for b in self.got]

    async def ended(self, timeout: float = TIMEOUT) -> None:
        await asyncio.wait_for(self.task, timeout)


class BusContract:
    """The bus suite. Override ``make_bus``."""

    def make_bus(self) -> Any:
        """Return a new bus (or an awaitable of one)."""
        raise NotImplementedError("a BusContract subclass implements make_bus()")

    @pytest_asyncio.fixture
    async def bus(self) -> AsyncIterator[Bus]:
        made = self.make_bus()
        b: Bus = await made if inspect.isawaitable(made) else made
        yield b
        await b.close()

    @pytest.mark.asyncio
    async def test_every_subscriber_gets_every_batch_in_order_unchanged(self, bus: Bus) -> None:
        consumers = [Consumer(bus.subscribe(f"s{i}")) for i in range(3)]
        sent = [batch(k) for k in range(1000)]
        for b in sent:
            bus.publish(b)
        await wait_until(lambda: all(len(c.got) >= 1000 for c in consumers), "1000 batches to each subscriber")
        for c in consumers:
            assert c.numbers == list(range(1000))
            assert all(got.equals(b) for got, b in zip(c.got, sent, strict=True))

    @pytest.mark.asyncio
    async def test_publish_never_blocks_when_no_one_reads(self, bus: Bus) -> None:
        sub = bus.subscribe("idle")
        for k in range(5000):
            bus.publish(batch(k))  # returns at once every time: nothing awaits here
        await wait_until(lambda: sub.pending() == 5000, "5000 batches pending")
        first = await asyncio.wait_for(anext(aiter(sub)), TIMEOUT)
        assert number(first) == 0 and sub.dropped == 0

    @pytest.mark.asyncio
    async def test_bounded_subscriber_keeps_the_newest_and_counts_the_dropped(self, bus: Bus) -> None:
        live = bus.subscribe("live", maxsize=10)
        store = bus.subscribe("store")
        for k in range(25):
            bus.publish(batch(k))
        await wait_until(lambda: live.dropped == 15 and store.pending() == 25, "15 dropped, 25 pending")
        assert live.pending() == 10 and store.dropped == 0
        live_c = Consumer(live)
        await wait_until(lambda: len(live_c.got) == 10, "the ten newest batches")
        assert live_c.numbers == list(range(15, 25))

    @pytest.mark.asyncio
    async def test_a_slow_subscriber_holds_up_no_one_and_loses_nothing(self, bus: Bus) -> None:
        gate = asyncio.Event()
        slow = Consumer(bus.subscribe("slow"), gate)
        fast = Consumer(bus.subscribe("fast"))
        for k in range(200):
            bus.publish(batch(k))
        await wait_until(lambda: len(fast.got) == 200, "the fast subscriber's 200 batches")
        assert slow.got == []
        gate.set()
        await wait_until(lambda: len(slow.got) == 200, "the slow subscriber's 200 batches")
        assert slow.numbers == list(range(200)) and slow.sub.dropped == 0

    @pytest.mark.asyncio
    async def test_a_subscriber_sees_only_what_is_published_after_it_subscribed(self, bus: Bus) -> None:
        early = Consumer(bus.subscribe("early"))
        bus.publish(batch(1))
        await wait_until(lambda: len(early.got) == 1, "the first batch")
        late = Consumer(bus.subscribe("late"))
        bus.publish(batch(2))
        await wait_until(lambda: len(early.got) == 2 and len(late.got) == 1, "the second batch to both")
        assert late.numbers == [2]

    @pytest.mark.asyncio
    async def test_closing_a_subscription_ends_it_and_only_it(self, bus: Bus) -> None:
        gone, kept = Consumer(bus.subscribe("gone")), Consumer(bus.subscribe("kept"))
        bus.publish(batch(1))
        await wait_until(lambda: len(gone.got) == 1 and len(kept.got) == 1, "the first batch to both")
        gone.sub.close()
        await gone.ended()
        bus.publish(batch(2))
        await wait_until(lambda: len(kept.got) == 2, "the second batch to the open subscription")
        assert gone.numbers == [1] and kept.numbers == [1, 2]

    @pytest.mark.asyncio
    async def test_closing_the_bus_ends_every_subscription(self, bus: Bus) -> None:
        consumers = [Consumer(bus.subscribe("a")), Consumer(bus.subscribe("b", maxsize=5))]
        bus.publish(batch(7))
        await wait_until(lambda: all(len(c.got) == 1 for c in consumers), "the batch to both")
        await bus.close()
        for c in consumers:
            await c.ended()
            assert c.numbers == [7]
