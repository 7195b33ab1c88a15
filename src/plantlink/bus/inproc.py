"""In-process bus: asyncio queues, one per subscriber. Publish must be called from the event loop thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pyarrow as pa

from plantlink.bus.base import Bus, Subscription

_CLOSED = object()


class _Sub(Subscription):
    def __init__(self, bus: InProcBus, name: str, maxsize: int):
        self.bus = bus
        self.name = name
        self.maxsize = maxsize
        self.dropped = 0
        self.bytes = 0  # of the batches queued (counted for lossless subscribers only)
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    def put(self, batch: pa.RecordBatch, size: int) -> None:
        if self.maxsize and self.queue.qsize() >= self.maxsize:
            self.queue.get_nowait()
            self.dropped += 1
        elif not self.maxsize:
            self.bytes += size
        self.queue.put_nowait(batch)

    async def __aiter__(self) -> AsyncIterator[pa.RecordBatch]:
        while True:
            item = await self.queue.get()
            if item is _CLOSED:
                return
            assert isinstance(item, pa.RecordBatch)
            if not self.maxsize:
                self.bytes -= int(item.get_total_buffer_size())
            yield item

    def pending(self) -> int:
        return self.queue.qsize()

    def close(self) -> None:
        if self in self.bus._subs:
            self.bus._subs.remove(self)
        self.queue.put_nowait(_CLOSED)


class InProcBus(Bus):
    def __init__(self) -> None:
        self._subs: list[_Sub] = []
        self.published = 0

    def publish(self, batch: pa.RecordBatch) -> None:
        self.published += batch.num_rows
        size = int(batch.get_total_buffer_size())
        for sub in self._subs:
            sub.put(batch, size)

    def backlog_bytes(self) -> int:
        """Read from the write-ahead log's threads too (a snapshot of ints; the subscription list is copied)."""
        return max((s.bytes for s in tuple(self._subs) if not s.maxsize), default=0)

    def subscribe(self, name: str, maxsize: int = 0) -> Subscription:
        sub = _Sub(self, name, maxsize)
        self._subs.append(sub)
        # Live views (bounded, lossy) come first: they are latency-bound and cheap, and the consumer woken first
        # runs first, before the engines and the historian writer chew on the same batch.
        self._subs.sort(key=lambda s: s.maxsize == 0)
        return sub

    async def close(self) -> None:
        for sub in list(self._subs):
            sub.close()


#: The ``plantlink.buses`` entry point ``inproc``: a factory ``(**options) -> Bus``.
plugin = InProcBus
