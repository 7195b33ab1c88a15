"""The runtime's historian writer: batches from a lossless bus subscription into the historian, flushed (made
durable) every ``flush_interval`` seconds in a worker thread, then ``after_flush`` (the write-ahead log's
checkpoint). While the historian's buffer is full it waits for a flush: the bus holds the batches meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from plantlink.bus import Subscription
from plantlink.historian import Historian
from plantlink.wal import seq_of

log = logging.getLogger("plantlink.runtime")


class HistorianWriter:
    """Consumes a lossless bus subscription, writes batches (with their log sequence numbers), flushes in a
    worker thread and then calls ``after_flush`` there (the log's checkpoint)."""

    def __init__(self, historian: Historian, sub: Subscription, flush_interval: float = 1.0,
                 after_flush: Callable[[], object] | None = None):
        self.historian = historian
        self.sub = sub
        self.flush_interval = flush_interval
        self.after_flush = after_flush
        self.received = 0
        self.errors = 0
        self.waits = 0  # times the historian's buffer was full and the writer waited for a flush
        self.last_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._flusher())]

    async def _consume(self) -> None:
        async for batch in self.sub:
            if not self.historian.has_room():  # back-pressure: the bus holds the batches meanwhile
                await self._wait_for_room()
            try:
                self.historian.write(batch, seq_of(batch))
                self.received += batch.num_rows
            except Exception as exc:  # a bad batch must not stop storage of the others
                self.errors += 1
                self.last_error = str(exc)
                log.exception("historian refused a batch of %d rows", batch.num_rows)

    async def _wait_for_room(self) -> None:
        self.waits += 1
        try:
            await asyncio.to_thread(self.historian.wait_for_room)
        except Exception as exc:  # a failing flush: the samples stay buffered, the next flush retries
            self.errors += 1
            self.last_error = str(exc)
            log.exception("historian flush (buffer full) failed")

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        try:
            await asyncio.to_thread(self._flush_and_checkpoint)
        except Exception as exc:
            self.errors += 1
            self.last_error = str(exc)
            log.exception("historian flush failed")

    def _flush_and_checkpoint(self) -> None:
        self.historian.flush()
        if self.after_flush is not None:
            self.after_flush()

    async def stop(self) -> None:
        """Drain what the bus holds, stop, and flush: every batch published before stop is stored."""
        self.sub.close()
        consume, flusher = self._tasks
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await consume
        await self.flush()
