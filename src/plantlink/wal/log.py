"""``WriteAheadLog``: arriving batches are appended to segment files and fsynced by group commit before they
are delivered (published on the bus); after a restart, what the historian had not made durable is replayed.

* ``append`` (the connectors' sink, on the event loop) only queues the batch: O(1), no I/O.
* A committer thread frames the queued batches (``segment.Encoder``) and writes them in one synchronous ``writev``
  (the segment is opened ``O_DSYNC``: the write returns once the data is on disk, as write + fdatasync, in one
  system call: fewer hand-overs of the GIL between the committer and the event loop), and only
  then hands them to ``deliver`` on the event loop, in order, each stamped with its sequence number in the
  schema metadata (``seq_of``). Commits are at most every ``commit_ms`` (group commit): a batch waits for the
  next commit, never longer than ``commit_ms`` plus one fsync. ``commit_ms = 0``: commit as soon as a batch is
  queued (batches that arrive during an fsync share the next one).
* Delivery held on disk (``delivery``): when ``start`` is given the bus's ``backlog`` and the consumers fall
  more than ``hold_bytes`` behind, committed batches are no longer kept in memory and handed over; they are
  read back from the segments, in order, as the consumers catch up.
* ``checkpoint(seq)``: segments whose records are all ``<= seq`` (durable in the historian) are deleted (never
  one holding a batch not yet delivered).
* Bounded: when the segments on disk plus the queue reach ``max_bytes``, ``append`` refuses batches (counted,
  logged): a refused batch is never shown, stored or acknowledged. This only happens while the historian
  cannot make data durable (checkpoints free the space).
* A failed write or fsync (disk full, I/O error) is logged and retried in a new segment, with back-off; the
  batches wait (and count against ``max_bytes``), nothing unlogged is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from plantlink.samples import conform
from plantlink.wal.delivery import SEQ_KEY, Delivery, Out, size_of
from plantlink.wal.segment import Encoder, SegmentReader, first_seq_of, segment_name, write_all

log = logging.getLogger("plantlink.wal")

RECORD_OVERHEAD = 1024  # header + schema message, for the size estimate of a queued batch
RETRY_S = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class WalSettings:
    """The durability promise. ``enabled=False`` runs without a log (samples buffered for the historian's
    ``flush_interval`` are lost on a crash, and are shown live before they are stored)."""

    enabled: bool = True
    commit_ms: float = 20.0
    max_bytes: int = 1024 * 2**20
    segment_bytes: int = 16 * 2**20
    #: delivery is held on disk while this much waits in memory for the bus's slowest lossless consumer
    hold_bytes: int = 16 * 2**20

    def __post_init__(self) -> None:
        if not 0 <= self.commit_ms <= 10_000:
            raise ValueError(f"wal commit_ms must be between 0 and 10000, got {self.commit_ms}")
        if self.segment_bytes < 4096 or self.max_bytes < 2 * self.segment_bytes:
            raise ValueError(f"wal max_bytes ({self.max_bytes}) must be at least twice segment_bytes "
                             f"({self.segment_bytes}), which must be at least 4096")
        if self.hold_bytes < 2**20:
            raise ValueError(f"wal hold_bytes must be at least 1 MiB, got {self.hold_bytes}")


def seq_of(batch: pa.RecordBatch) -> int | None:
    """The WAL sequence number a delivered batch carries (None for a batch that did not come through a WAL)."""
    meta = batch.schema.metadata
    return int(meta[SEQ_KEY]) if meta and SEQ_KEY in meta else None


@dataclass
class _Segment:
    first_seq: int
    path: Path
    size: int = 0
    last_seq: int | None = None  # None while the committer may still append to it


@dataclass
class _Item:
    batch: pa.RecordBatch
    queued_at: float
    size: int
    seq: int = 0
    then: Callable[[], None] | None = None  # called on the loop once the batch is durable and delivered


class _Ring:
    """The last ``n`` values of a figure, for percentiles."""

    def __init__(self, n: int = 2048):
        self._v = np.zeros(n)
        self._i = 0

    def add(self, x: float) -> None:
        self._v[self._i % len(self._v)] = x
        self._i += 1

    def pct(self, q: float) -> float | None:
        n = min(self._i, len(self._v))
        return round(float(np.percentile(self._v[:n], q)), 3) if n else None


@dataclass
class WalStats:
    appended_batches: int = 0
    appended_rows: int = 0
    committed_batches: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    refused_batches: int = 0
    refused_rows: int = 0
    write_errors: int = 0
    last_error: str | None = None
    replayed_batches: int = 0
    replayed_rows: int = 0
    dropped_tail_bytes: int = 0
    fsync_ms: _Ring = field(default_factory=_Ring)
    commit_ms: _Ring = field(default_factory=_Ring)


class WriteAheadLog:
    def __init__(self, directory: str | Path, settings: WalSettings | None = None):
        self.dir = Path(directory)
        self.settings = settings or WalSettings()
        self.stats = WalStats()
        self._segments: list[_Segment] = []
        self._lock = threading.Lock()  # the segment list and disk bytes (committer vs checkpoint)
        self._cond = threading.Condition()  # the queue
        self._queue: list[_Item] = []
        self._queued_bytes = 0
        self._disk_bytes = 0
        self._next_seq = 1
        self._scanned = False
        self._checkpoint = 0
        self._active: _Segment | None = None
        self._fd: int | None = None
        self._encoder = Encoder()
        self._thread: threading.Thread | None = None
        self._delivery: Delivery | None = None
        self._closing = False
        self._idle = False  # the committer waits for a batch (append wakes it only then)
        self._full = False
        self._committed_seq = 0
        self._active_last = 0

    # -- start: scan and replay ---------------------------------------------------------------------------
    def open(self) -> None:
        """Create the directory (0700) and list the segments left by earlier runs."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        found = sorted((s, p) for p in self.dir.iterdir() if (s := first_seq_of(p)) is not None)
        self._segments = [_Segment(s, p, p.stat().st_size) for s, p in found]
        self._disk_bytes = sum(s.size for s in self._segments)

    def replay(self, after: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Every logged batch with a sequence number above ``after`` (durable elsewhere up to there), in order.
        A torn or corrupt tail of a segment is dropped and logged. Call before ``start``."""
        last = after
        for seg in list(self._segments):
            reader = SegmentReader(seg.path)
            for seq, batch in reader:
                if seq <= last:
                    continue  # durable already, or written twice (a commit retried after a failed fsync)
                last = seq
                with contextlib.suppress(ValueError):  # (one that cannot be is refused by the historian)
                    batch = conform(batch)  # a record of an older release may have a legacy shape
                self.stats.replayed_batches += 1
                self.stats.replayed_rows += batch.num_rows
                yield seq, batch
            seg.last_seq = reader.last_seq if reader.last_seq is not None else seg.first_seq - 1
            if reader.problem:
                self.stats.dropped_tail_bytes += reader.dropped_bytes
                log.warning("write-ahead log: %s; the %d bytes from there are dropped (a write cut short by a "
                            "crash; nothing in them was delivered)", reader.problem, reader.dropped_bytes)
        self._next_seq = max(self._next_seq, last + 1)
        self._scanned = True

    # -- run ----------------------------------------------------------------------------------------------
    def start(self, deliver: Callable[[pa.RecordBatch], None], after: int = 0,
              backlog: Callable[[], int] | None = None) -> None:
        """Start the committer; ``deliver`` (for example ``bus.publish``) gets each batch once it is durable,
        on the calling thread's event loop. ``backlog`` (for example ``bus.backlog_bytes``): bytes delivered and
        not yet taken by the slowest consumer; beyond ``hold_bytes`` delivery is held on disk."""
        if not self._scanned:
            for _ in self.replay(after):
                pass
        self._delivery = Delivery(deliver, asyncio.get_running_loop(), self._spans, backlog,
                                  self.settings.hold_bytes)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="wal-committer", daemon=True)
        self._thread.start()

    def append(self, batch: pa.RecordBatch, then: Callable[[], None] | None = None) -> bool:
        """The connectors' sink: queue the batch for the next commit; refuse it when the log is full (False).
        ``then`` (optional) is called on the event loop once the batch is durable and delivered."""
        size = self.size_of(batch)
        if self._closing or self._disk_bytes + self._queued_bytes + size > self.settings.max_bytes:
            self._refuse(batch)
            return False
        if self._full:
            self._full = False
            log.warning("write-ahead log: accepting samples again (%d refused so far)", self.stats.refused_rows)
        self.stats.appended_batches += 1
        self.stats.appended_rows += batch.num_rows
        with self._cond:
            self._queue.append(_Item(batch, time.monotonic(), size, then=then))
            self._queued_bytes += size
            if self._idle:
                self._cond.notify()
        return True

    @staticmethod
    def size_of(batch: pa.RecordBatch) -> int:
        """What a batch counts against ``max_bytes`` (an estimate of its record's size)."""
        return int(batch.get_total_buffer_size()) + RECORD_OVERHEAD

    @property
    def used_bytes(self) -> int:
        """The segments on disk plus the batches queued for the next commit."""
        return self._disk_bytes + self._queued_bytes

    def sealed_segments(self) -> list[tuple[int, int, Path]]:
        """``(first seq, last seq, path)`` of the segments the committer no longer appends to, oldest first."""
        with self._lock:
            return [(s.first_seq, s.last_seq, s.path) for s in self._segments
                    if s is not self._active and s.last_seq is not None]

    def segment_paths(self) -> list[tuple[int, Path]]:
        """``(first seq, path)`` of every segment, oldest first (the active one last)."""
        with self._lock:
            return [(s.first_seq, s.path) for s in self._segments]

    def _refuse(self, batch: pa.RecordBatch) -> None:
        self.stats.refused_batches += 1
        self.stats.refused_rows += batch.num_rows
        if not self._full and not self._closing:
            self._full = True
            log.error("write-ahead log full (%d MiB in %s): refusing arriving samples until the historian makes "
                      "data durable again; refused samples are neither shown nor stored",
                      self.settings.max_bytes >> 20, self.dir)

    def _run(self) -> None:
        interval = self.settings.commit_ms / 1000
        last_start = -interval
        failures = 0
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                if not self._queue:
                    return
            wait = last_start + interval - time.monotonic()  # commits start at most every interval
            if wait > 0:
                time.sleep(wait)
            last_start = time.monotonic()
            with self._cond:
                items, self._queue = self._queue, []
            try:
                self._commit(items)
                failures = 0
            except OSError as exc:
                failures += 1
                if not self._retry(items, exc, failures):
                    return
            except Exception as exc:  # a bug must not stop the committer
                log.exception("write-ahead log: commit failed")
                self._drop(items, exc)

    def _drop(self, items: list[_Item], exc: Exception) -> None:
        """Batches that cannot be logged: counted as refused and never delivered (so never shown or stored)."""
        self.stats.write_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self.stats.refused_batches += len(items)
        self.stats.refused_rows += sum(it.batch.num_rows for it in items)
        with self._cond:
            self._queued_bytes -= sum(it.size for it in items)
        log.error("write-ahead log: %d batch(es) cannot be logged and are dropped: %s", len(items),
                  self.stats.last_error)

    def _retry(self, items: list[_Item], exc: OSError, failures: int) -> bool:
        """After a failed write or fsync: keep the batches queued and go on in a new segment. False when
        stopping and the disk still fails (the batches are dropped: they were never delivered)."""
        self.stats.write_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._close_active()
        with self._cond:
            self._queue[:0] = items
        if self._closing and failures >= 3:
            log.error("write-ahead log: %s; stopping with %d batches not logged (never shown or stored)",
                      self.stats.last_error, len(self._queue))
            return False
        delay = RETRY_S[min(failures, len(RETRY_S)) - 1]
        log.error("write-ahead log: write to %s failed (%s); retrying in a new segment in %.1fs",
                  self.dir, self.stats.last_error, delay)
        time.sleep(delay)
        return True

    def _commit(self, items: list[_Item]) -> None:
        for it in items:
            if not it.seq:
                it.seq, self._next_seq = self._next_seq, self._next_seq + 1
        parts: list[bytes | pa.Buffer] = []
        for it in list(items):
            try:
                parts += self._encoder.parts(it.seq, it.batch)
            except (ValueError, pa.ArrowException) as exc:  # this batch only
                items.remove(it)
                self._drop([it], exc)
        if not items:
            return
        fd = self._segment_for(items[0].seq)
        t = time.monotonic()
        written = write_all(fd, parts)  # O_DSYNC: durable when it returns
        done = time.monotonic()
        self.stats.fsync_ms.add((done - t) * 1000)
        self.stats.fsyncs += 1
        self.stats.committed_batches += len(items)
        self.stats.bytes_written += written
        with self._lock:
            assert self._active is not None
            self._active.size += written
            self._disk_bytes += written
            self._active_last = items[-1].seq
        with self._cond:
            self._queued_bytes -= sum(it.size for it in items)
        self._committed_seq = items[-1].seq
        for it in items:
            self.stats.commit_ms.add((done - it.queued_at) * 1000)
        assert self._delivery is not None
        self._delivery.committed([Out(it.seq, it.batch, it.then, size_of(it.batch)) for it in items], written)

    def _segment_for(self, seq: int) -> int:
        """The active segment's descriptor; a new segment (named ``seq``) when there is none or it is full."""
        if self._fd is not None and self._active is not None and self._active.size < self.settings.segment_bytes:
            return self._fd
        self._close_active()
        seg = _Segment(seq, self.dir / segment_name(seq))
        fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_DSYNC, 0o600)
        try:
            dfd = os.open(self.dir, os.O_RDONLY)  # the new file's name must survive a power cut too
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException:
            os.close(fd)
            raise
        with self._lock:
            self._segments = [s for s in self._segments if s.path != seg.path] + [seg]
            self._active, self._fd = seg, fd
            self._active_last = seq - 1
        return fd

    def _close_active(self) -> None:
        with self._lock:
            if self._active is not None:
                self._active.last_seq = self._active_last
            fd, self._fd, self._active = self._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _spans(self) -> list[tuple[int, int | None, Path]]:
        with self._lock:
            return [(s.first_seq, s.last_seq, s.path) for s in self._segments]

    # -- checkpoint and stop ------------------------------------------------------------------------------
    def checkpoint(self, durable_seq: int) -> int:
        """Delete the segments whose every record is durable elsewhere (``<= durable_seq``); return how many.
        While delivery is held, no segment beyond the last batch delivered is deleted."""
        if self._delivery is not None:
            durable_seq = self._delivery.checkpoint_bound(durable_seq)
        with self._lock:
            self._checkpoint = max(self._checkpoint, durable_seq)
            gone = [s for s in self._segments if s is not self._active and s.last_seq is not None
                    and s.last_seq <= durable_seq]
            self._segments = [s for s in self._segments if s not in gone]
            self._disk_bytes -= sum(s.size for s in gone)
        for s in gone:
            try:
                s.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("write-ahead log: cannot delete %s: %s", s.path, exc)
        return len(gone)

    async def stop(self) -> None:
        """Commit and deliver everything queued, then stop the committer (the log stays open for checkpoint).
        Batches whose delivery is held on disk stay in the log: the next start replays them."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._cond:
            self._closing = True
            self._cond.notify()
        await asyncio.to_thread(thread.join)
        delivery = self._delivery
        assert delivery is not None
        await asyncio.to_thread(delivery.stop)
        for _ in range(1000):  # the last hand-overs are queued on this loop
            if delivery.handed_over:
                break
            await asyncio.sleep(0.001)
        if delivery.held:
            log.warning("write-ahead log: stopping with delivery held on disk: %d batches stay in the log for "
                        "the next start", delivery.held_batches)
        self._close_active()

    def status(self) -> dict[str, Any]:
        s = self.stats
        with self._lock:
            segments, disk = len(self._segments), self._disk_bytes
        return {
            "enabled": True, "commit_ms": self.settings.commit_ms, "max_bytes": self.settings.max_bytes,
            "appended_batches": s.appended_batches, "appended_rows": s.appended_rows,
            "committed_batches": s.committed_batches, "bytes_written": s.bytes_written, "fsyncs": s.fsyncs,
            "fsync_p99_ms": s.fsync_ms.pct(99), "commit_p50_ms": s.commit_ms.pct(50),
            "commit_p99_ms": s.commit_ms.pct(99), "refused_batches": s.refused_batches,
            "refused_rows": s.refused_rows, "full": self._full, "write_errors": s.write_errors,
            "last_error": s.last_error, "replayed_batches": s.replayed_batches, "replayed_rows": s.replayed_rows,
            "dropped_tail_bytes": s.dropped_tail_bytes, "segments": segments, "disk_bytes": disk,
            "checkpoint_seq": self._checkpoint, "committed_seq": self._committed_seq,
            **(self._delivery.status() if self._delivery is not None else {}),
        }
