"""Live values: ONE latest-value cache per runtime, fed by a bus subscription.

Control (interlocks, read-back, freshness), the REST ``/tags/latest`` answer, the live stream's hub and the
HMI read it. It is seeded from the historian's latest values when the runtime starts (what was known before a
restart, or written by the log's replay), then folds in every batch the bus delivers, in arrival order: the
latest sample of a tag is the one that arrived last, as in the historian (``historian.duckdb.latest``).
``tick`` counts the batches folded in, so a reader can tell cheaply that something changed.

It is the ONE bus subscription for live values: the live stream's hub does not subscribe to the bus but
``listen``s here. Each batch the bus delivers is folded in first, then offered to every listener: a bounded,
lossy queue of its own (a listener that falls behind loses its oldest batches, counted in ``dropped``; it
never slows the cache or the bus), consumed in arrival order; while the cache keeps up with the bus and the
listener's queue is empty, a listener that gave ``at_once`` gets the batch in the cache's own turn (the
hub's fan-out then runs before the historian writer and the engines, as with a bus subscription of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.historian.duckdb.latest import LatestCache as _Arrays

if TYPE_CHECKING:
    from plantlink.bus import Bus, Subscription

log = logging.getLogger("plantlink.services.latest")


def _plain_ts(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(col.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


class Listener:
    """The batches folded into the cache from now on, in arrival order: an async iterator over a bounded queue
    (``maxsize`` > 0: when full, the oldest batch is dropped and counted), ended by ``close()``.

    With ``at_once`` (a function that must not block: CPU work, no I/O), a batch that arrives while the cache
    keeps up with the bus and nothing is queued is handed to it at once, in the cache's turn of the event loop:
    no extra hop behind the other bus consumers. Otherwise it is queued, to be read by iterating."""

    def __init__(self, owner: LatestValues, name: str, maxsize: int,
                 at_once: Callable[[pa.RecordBatch], object] | None = None):
        self.name, self.maxsize, self._owner, self._at_once = name, maxsize, owner, at_once
        self.dropped = 0
        self._items: deque[pa.RecordBatch] = deque()
        self._wake = asyncio.Event()
        self._closed = False

    def offer(self, batch: pa.RecordBatch, keeping_up: bool = False) -> None:
        """Hand over or queue a batch (never blocks; called in the event loop)."""
        if self._closed:
            return
        if keeping_up and self._at_once is not None and not self._items:
            try:
                self._at_once(batch)
            except Exception:
                log.exception("latest values: listener %s failed on a batch of %d rows", self.name, batch.num_rows)
            return
        if self.maxsize and len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(batch)
        self._wake.set()

    async def __aiter__(self) -> AsyncIterator[pa.RecordBatch]:
        while True:
            while self._items:
                yield self._items.popleft()
            if self._closed:
                return
            self._wake.clear()
            await self._wake.wait()

    def pending(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Stop listening: what is queued is still delivered, then the iteration ends."""
        self._closed = True
        self._owner._listeners.discard(self)
        self._wake.set()


class LatestValues:
    """The last sample of every tag (``table(ids)`` has the historian's ``latest`` columns)."""

    def __init__(self) -> None:
        self._arrays = _Arrays()
        self._lock = threading.Lock()
        self.tick = 0
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: set[Listener] = set()

    # -- feeding --------------------------------------------------------------------------------------
    def fold(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Fold in a sample batch (``samples.SAMPLE_SCHEMA``, or a ``latest`` answer) in arrival order."""
        if batch.num_rows == 0:
            return
        tag = np.asarray(batch.column("tag_id").to_numpy(zero_copy_only=False), dtype=np.int64)
        value, text = _array(batch.column("value")), _array(batch.column("text"))
        quality = np.asarray(batch.column("quality").to_numpy(zero_copy_only=False), dtype=np.uint8)
        with self._lock:
            self._arrays.update(tag, _plain_ts(batch.column("ts")), value, quality, text)
            self.tick += 1

    def seed(self, table: pa.Table) -> None:
        """Start from a historian ``latest`` answer (rows without a time are left out)."""
        self.fold(table.filter(pc.is_valid(table.column("ts"))))

    def listen(self, name: str, maxsize: int = 32,
               at_once: Callable[[pa.RecordBatch], object] | None = None) -> Listener:
        """The batches folded in from now on (see ``Listener``): the live stream's hub reads values here."""
        listener = Listener(self, name, maxsize, at_once)
        self._listeners.add(listener)
        return listener

    def start(self, bus: Bus) -> None:
        """Subscribe (lossless: the last value of a tag is never skipped) and fold in what arrives."""
        self._sub = bus.subscribe("latest")
        self._task = asyncio.create_task(self._consume(self._sub), name="latest-values")

    async def _consume(self, sub: Subscription) -> None:
        async for batch in sub:
            try:
                self.fold(batch)
            except Exception:  # a malformed batch must not stop live values
                log.exception("latest values: a batch of %d rows was not folded in", batch.num_rows)
                continue
            keeping_up = sub.pending() == 0  # no backlog: a listener may take the batch at once
            for listener in list(self._listeners):
                listener.offer(batch, keeping_up)

    def pending(self) -> int:
        """Batches on the bus not folded in yet."""
        return 0 if self._sub is None else self._sub.pending()

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sub = self._task = None
        for listener in list(self._listeners):
            listener.close()

    # -- reading --------------------------------------------------------------------------------------
    def table(self, tag_ids: Sequence[int] | np.ndarray) -> pa.Table:
        """``tag_id``, ``ts``, ``value``, ``quality``, ``text`` per id, in the order asked (nulls: unknown)."""
        ids = np.asarray(tag_ids, dtype=np.int64)
        with self._lock:
            return self._arrays.table(ids)

    latest = table
