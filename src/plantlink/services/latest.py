"""Live values: ONE latest-value cache per runtime, fed by a bus subscription.

Control (interlocks, read-back, freshness), the REST ``/tags/latest`` answer, the live stream's hub and the
HMI read it. It is seeded from the historian's latest values when the runtime starts (what was known before a
restart, or written by the log's replay), then folds in every batch the bus delivers, in arrival order: the
latest sample of a tag is the one that arrived last, as in the historian (``historian.duckdb.latest``).
``tick`` counts the batches folded in, so a reader can tell cheaply that something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
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


class LatestValues:
    """The last sample of every tag (``table(ids)`` has the historian's ``latest`` columns)."""

    def __init__(self) -> None:
        self._arrays = _Arrays()
        self._lock = threading.Lock()
        self.tick = 0
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

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

    # -- reading --------------------------------------------------------------------------------------
    def table(self, tag_ids: Sequence[int] | np.ndarray) -> pa.Table:
        """``tag_id``, ``ts``, ``value``, ``quality``, ``text`` per id, in the order asked (nulls: unknown)."""
        ids = np.asarray(tag_ids, dtype=np.int64)
        with self._lock:
            return self._arrays.table(ids)

    latest = table
