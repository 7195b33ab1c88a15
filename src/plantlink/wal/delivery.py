"""Delivery of the log's committed batches on the event loop, in order, directly or **held on disk**.

The committer hands each commit to ``Delivery.committed``. Normally the batches go straight to ``deliver``
(``bus.publish``) on the event loop. When the consumers are behind, that is when ``backlog()`` (bytes that wait
in memory for the slowest lossless bus subscriber, the historian writer in practice) plus what is scheduled on
the loop and not yet handed over reaches ``hold_bytes``, delivery is *held*: the committed batches are not kept
in memory (they are on disk, fsynced, in the segments), only the sequence number to deliver next is. A reader
thread delivers them later, read back from the segment files (``segment.Cursor``) in order, in slices of up to
``hold_bytes`` minus the backlog each time the backlog has fallen below half of ``hold_bytes``; once it has
delivered everything committed it switches back to direct delivery (under the same lock as the committer's
decision, so the order is kept and no batch is delivered twice or skipped).

A batch's ``then`` (``WriteAheadLog.append``) is called once it is delivered, either way. ``stop`` leaves held
batches in the log: they are durable there, and the next start replays them into the historian as after a
crash (the log's checkpoint never deletes a segment beyond the last batch delivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from plantlink.samples import conform
from plantlink.wal.segment import Cursor

log = logging.getLogger("plantlink.wal")

SEQ_KEY = b"plantlink.wal_seq"
POLL_S = 0.005  # while held: how often the reader looks at the backlog

#: ``(first seq, last seq or None while the committer appends to it, path)`` of every segment, oldest first.
Spans = Callable[[], list[tuple[int, int | None, Path]]]


@dataclass
class Out:
    """A committed batch on its way to ``deliver``; ``size`` is what it counts in memory until handed over."""

    seq: int
    batch: pa.RecordBatch
    then: Callable[[], None] | None
    size: int


def size_of(batch: pa.RecordBatch) -> int:
    return int(batch.get_total_buffer_size())


class Delivery:
    def __init__(self, deliver: Callable[[pa.RecordBatch], None], loop: asyncio.AbstractEventLoop, spans: Spans,
                 backlog: Callable[[], int] | None = None, hold_bytes: int = 16 * 2**20):
        self._deliver, self._loop, self._backlog, self.hold_bytes = deliver, loop, backlog, hold_bytes
        self._reader = _Reader(spans)
        self._cond = threading.Condition()
        self._held_next: int | None = None  # the next batch to read back from disk; None: delivery is direct
        self._committed = 0
        self._thens: dict[int, Callable[[], None]] = {}  # of held batches
        self._scheduled = 0  # bytes scheduled on the loop (the committer and reader threads add)
        self._handed = 0  # bytes handed over (the loop adds)
        self._closing = False
        self.delivered_seq = 0
        self.held_batches = self.held_bytes = 0  # committed and waiting on disk (bytes of their records)
        self.holds = self.read_back_batches = self.unreadable_batches = 0
        self._thread: threading.Thread | None = None
        if backlog is not None:
            self._thread = threading.Thread(target=self._run, name="wal-held-delivery", daemon=True)
            self._thread.start()

    # -- the committer's side -----------------------------------------------------------------------------
    def committed(self, out: list[Out], record_bytes: int) -> None:
        """A commit is on disk: deliver it now, or hold it (and every later one) on disk."""
        with self._cond:
            self._committed = out[-1].seq
            if self._held_next is None and self._over(sum(o.size for o in out)):
                self._held_next = out[0].seq
                self.holds += 1
                log.info("write-ahead log: the bus's consumers are %d MiB behind: delivery held on disk from "
                         "batch %d", self.pending_bytes() >> 20, out[0].seq)
            if self._held_next is None:
                self._schedule(out)
                return
            self.held_batches += len(out)
            self.held_bytes += record_bytes
            self._thens.update((o.seq, o.then) for o in out if o.then is not None)
            self._cond.notify()

    def _over(self, adding: int) -> bool:
        return self._backlog is not None and self.pending_bytes() + adding > self.hold_bytes

    def pending_bytes(self) -> int:
        """Bytes delivered or scheduled for delivery and not yet taken by the slowest lossless consumer."""
        return self._scheduled - self._handed + (self._backlog() if self._backlog is not None else 0)

    @property
    def held(self) -> bool:
        return self._held_next is not None

    def checkpoint_bound(self, durable_seq: int) -> int:
        """``durable_seq``, never beyond the last batch delivered while delivery is held (their segments stay)."""
        held = self._held_next
        return durable_seq if held is None else min(durable_seq, held - 1)

    # -- the loop's side ----------------------------------------------------------------------------------
    def _schedule(self, out: list[Out]) -> None:
        self._scheduled += sum(o.size for o in out)
        with contextlib.suppress(RuntimeError):  # the loop is gone (interpreter exit)
            self._loop.call_soon_threadsafe(self._hand_over, out)

    def _hand_over(self, out: list[Out]) -> None:
        for o in out:
            try:
                self._deliver(o.batch.replace_schema_metadata({SEQ_KEY: str(o.seq).encode()}))
                if o.then is not None:
                    o.then()
            except Exception:
                log.exception("write-ahead log: delivering batch %d failed", o.seq)
            self.delivered_seq = o.seq
            self._handed += o.size

    @property
    def handed_over(self) -> bool:
        """Everything scheduled on the loop has been handed to ``deliver``."""
        return self._handed >= self._scheduled

    # -- the reader: held batches back from disk ----------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (self._held_next is None or self._over(self.hold_bytes // 2)):
                    self._cond.wait(POLL_S if self._held_next is not None else None)
                if self._closing:
                    return
                start, upto = self._held_next, self._committed
            assert start is not None
            out, records, after = self._reader.read(start, upto, max(self.hold_bytes - self.pending_bytes(), 1))
            with self._cond:
                for o in out:
                    o.then = self._thens.pop(o.seq, None)
                self._schedule(out)
                self.read_back_batches += len(out)
                self._account(out, records, start, after)
                self._held_next = after if after <= self._committed else None  # caught up: direct again

    def _account(self, out: list[Out], records: int, start: int, after: int) -> None:
        lost = after - start - len(out)  # sequence numbers skipped: dropped at commit, or unreadable
        self.held_batches = max(0, self.held_batches - len(out) - max(lost, 0))
        self.held_bytes = max(0, self.held_bytes - records)
        if self._reader.unreadable:
            self.unreadable_batches += self._reader.unreadable
            self._reader.unreadable = 0
        if self._held_next is not None and after > self._committed:
            log.info("write-ahead log: held delivery caught up at batch %d; delivering directly again", after - 1)

    def stop(self) -> None:
        """Stop the reader (from a worker thread); held batches stay in the log for the next start's replay."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        self._reader.close()

    def status(self) -> dict[str, Any]:
        return {"delivery_held": self.held, "held_batches": self.held_batches, "held_bytes": self.held_bytes,
                "hold_bytes": self.hold_bytes if self._backlog is not None else None,
                "delivery_backlog_bytes": self.pending_bytes(), "holds": self.holds,
                "read_back_batches": self.read_back_batches, "unreadable_batches": self.unreadable_batches,
                "delivered_seq": self.delivered_seq}


class _Reader:
    """Reads committed records back from the segments, from a sequence number on (one segment open at a time)."""

    def __init__(self, spans: Spans):
        self._spans = spans
        self._cur: Cursor | None = None
        self.unreadable = 0

    def read(self, start: int, upto: int, budget: int) -> tuple[list[Out], int, int]:
        """The batches ``start..upto`` in order, until ``budget`` bytes (at least one batch); also the bytes of
        their records and the sequence number to read next."""
        out: list[Out] = []
        used = records = 0
        nxt = start
        while nxt <= upto and (used < budget or not out):
            cur = self._cursor_for(nxt)
            at = cur.pos if cur is not None else 0
            rec = cur.next() if cur is not None else None
            if rec is None:
                nxt = self._next_segment(nxt, upto, cur)
                continue
            seq, batch, n = rec
            if seq > upto:
                assert cur is not None
                cur.pos = at  # not committed when this read began: the next read starts there
                break
            if seq < nxt:
                continue  # before the position (a fresh cursor), or written twice (a retried commit)
            with contextlib.suppress(ValueError):  # (one that cannot be is refused by the historian)
                batch = conform(batch)  # logged without its text column when it had no text samples
            out.append(Out(seq, batch, None, size_of(batch)))
            used += out[-1].size
            records += n
            nxt = seq + 1
        return out, records, nxt

    def _cursor_for(self, seq: int) -> Cursor | None:
        """A cursor in the segment that holds ``seq`` (the newest one starting at or before it)."""
        holding = [p for first, _, p in self._spans() if first <= seq]
        if not holding:
            return None
        path = holding[-1]
        if self._cur is None or self._cur.path != path:
            self.close()
            with contextlib.suppress(OSError):
                self._cur = Cursor(path)
        return self._cur

    def _next_segment(self, nxt: int, upto: int, cur: Cursor | None) -> int:
        """Past the end of a segment's good records: where the next segment starts (sequence numbers in
        between were never logged: dropped at commit), or past ``upto`` when none does (logged: unreadable)."""
        later = [first for first, _, _ in self._spans() if first > nxt]
        if cur is not None and cur.problem:
            log.error("write-ahead log: held delivery: %s", cur.problem)
        if later:
            return min(later)
        self.unreadable += upto - nxt + 1
        log.error("write-ahead log: held delivery cannot read batches %d to %d back from %s; they are not "
                  "delivered", nxt, upto, cur.path if cur is not None else "the log")
        return upto + 1

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
            self._cur = None
