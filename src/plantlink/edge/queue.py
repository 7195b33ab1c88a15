"""The edge's store-and-forward queue: the write-ahead log (``plantlink.wal``) as a disk queue, with a read
cursor that advances only when the central confirmed a batch durable (over MQTT: the central's stored floor, not
the broker's PUBACK, which a broker restart can undo; over NATS: JetStream's acknowledgement, which is durable).

* ``append`` (the connectors' sink) logs a batch (group commit, fsync); it is sent only once durable.
* ``read(after, n)`` gives up to ``n`` logged batches with a sequence number above ``after``, read back from
  the segment files (nothing waits in memory: a long outage costs disk, not RAM).
* ``confirm(seq)``: every batch up to ``seq`` is durable at the central; the cursor (``cursor.json``, written
  atomically at most every ``CURSOR_EVERY`` s and on stop) moves there and wholly acknowledged segments are
  deleted. After a crash the cursor may be a little behind: those batches are sent again and the central
  removes them as duplicates (by edge and sequence number).
* Bounded by ``max_size``: ``drop_oldest`` deletes the oldest segment (its unsent samples counted in
  ``dropped_rows``) to make room; ``stop_reading`` leaves the room-making to the caller (``EdgeNode`` pauses
  the connectors near full); an append that still does not fit is refused and counted (``refused_rows``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from plantlink.model.edge import QueueSettings
from plantlink.samples import conform
from plantlink.wal import WalSettings, WriteAheadLog
from plantlink.wal.segment import HEADER, SegmentReader

log = logging.getLogger("plantlink.edge.queue")

CURSOR = "cursor.json"
EPOCH = "epoch"
CURSOR_EVERY = 0.2


class EdgeQueue:
    def __init__(self, directory: str | Path, settings: QueueSettings, commit_ms: float = 20.0):
        self.dir = Path(directory)
        self.settings = settings
        self.wal = WriteAheadLog(self.dir, WalSettings(commit_ms=commit_ms, max_bytes=settings.max_size,
                                                       segment_bytes=settings.segment_size))
        self.acked_seq = 0
        self.acked_rows = 0
        self.dropped_rows = 0
        self.dropped_batches = 0
        self.committed_seq = 0
        self.committed_rows = 0  # since the queue was created: acked + dropped + waiting
        self._pos: tuple[Path, int] | None = None  # where the next read starts (a segment, an offset in it)
        self._pos_seq = 0  # the last sequence number before ``_pos``
        self._cursor_written = 0.0
        self._cursor_dirty = False
        self._listener: Callable[[], None] | None = None
        self.epoch = ""
        #: rows of each batch above the cursor, from ``_rows_off`` (batch ``acked_seq + 1``) on
        self._rows = array("q")
        self._rows_off = 0

    # -- open, start, stop --------------------------------------------------------------------------------
    def open(self) -> None:
        """Read the cursor and count what the log holds beyond it (the backlog of the last run)."""
        self.wal.open()
        self.epoch = self._epoch()
        cur = self._read_cursor()
        self.acked_seq, self.acked_rows = int(cur.get("seq", 0)), int(cur.get("rows", 0))
        self.dropped_rows, self.dropped_batches = int(cur.get("dropped_rows", 0)), int(cur.get("dropped_batches", 0))
        waiting = 0
        last = self.acked_seq
        for seq, batch in self.wal.replay(self.acked_seq):
            waiting += batch.num_rows
            self._rows.extend([0] * (seq - last - 1))
            self._rows.append(batch.num_rows)
            last = seq
        self.committed_seq = last
        self.committed_rows = self.acked_rows + self.dropped_rows + waiting
        self.wal.checkpoint(self.acked_seq)
        if waiting:
            log.warning("edge queue: %d samples (up to batch %d) wait to be forwarded from the last run", waiting, last)

    def start(self, on_data: Callable[[], None]) -> None:
        self._listener = on_data
        self.wal.start(self._durable, self.acked_seq)

    async def stop(self) -> None:
        await self.wal.stop()
        self.write_cursor()

    def _durable(self, batch: pa.RecordBatch) -> None:
        from plantlink.wal import seq_of

        seq = seq_of(batch) or self.committed_seq + 1
        self._rows.extend([0] * (seq - self.committed_seq - 1))
        self._rows.append(batch.num_rows)
        self.committed_seq = seq
        self.committed_rows += batch.num_rows
        if self._listener is not None:
            self._listener()

    # -- append -------------------------------------------------------------------------------------------
    def append(self, batch: pa.RecordBatch) -> bool:
        if self.settings.when_full == "drop_oldest":
            need = self.wal.size_of(batch)
            while self.wal.used_bytes + need > self.settings.max_size and self._drop_oldest():
                pass
        return self.wal.append(batch)

    def _drop_oldest(self) -> bool:
        sealed = self.wal.sealed_segments()
        if not sealed:
            return False
        first, last, path = sealed[0]
        batches = max(0, last - self.acked_seq)
        rows = self._advance(last)
        self.dropped_rows += rows
        self.dropped_batches += batches
        if self._pos is not None and self._pos[0] == path:
            self._pos = None
        self.wal.checkpoint(self.acked_seq)
        self._cursor_dirty = True
        self.write_cursor()
        log.warning("edge queue full (%d MiB): dropped batches %d..%d (%d samples not forwarded, %d in all)",
                    self.settings.max_size >> 20, first, last, rows, self.dropped_rows)
        return True

    # -- read and acknowledge -----------------------------------------------------------------------------
    def read(self, after: int, n: int) -> list[tuple[int, pa.RecordBatch]]:
        """Up to ``n`` durable batches with a sequence number above ``after``, in order."""
        out: list[tuple[int, pa.RecordBatch]] = []
        limit = self.committed_seq
        if after != self._pos_seq:  # a read from elsewhere (a resend from the cursor after a reconnect): seek
            self._pos = None
        while len(out) < n and after < limit:
            got = self._read_some(after, n - len(out), limit)
            if not got:
                break
            out += got
            after = got[-1][0]
        return out

    def _read_some(self, after: int, n: int, limit: int) -> list[tuple[int, pa.RecordBatch]]:
        segments = self.wal.segment_paths()
        if not segments:
            return []
        if self._pos is None or self._pos[0] not in {p for _, p in segments}:
            start = [p for first, p in segments if first <= after + 1] or [segments[0][1]]
            self._pos = (start[-1], 0)
        path, offset = self._pos
        out: list[tuple[int, pa.RecordBatch]] = []
        ended = False  # the end of what the file holds (not the limit)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                while len(out) < n:
                    record = _next_record(f)
                    if record is None:
                        ended = True
                        break
                    seq, batch, size = record
                    if seq > limit:
                        break
                    offset += size
                    if seq > after:
                        out.append((seq, conform(batch)))
        except FileNotFoundError:  # dropped (drop_oldest) or acknowledged meanwhile
            self._pos = None
            return out
        self._pos = (path, offset)
        self._pos_seq = out[-1][0] if out else after  # every record above it is at or after _pos
        paths = [p for _, p in segments]
        if not out and ended and path in paths and paths.index(path) < len(paths) - 1:
            self._pos = (paths[paths.index(path) + 1], 0)  # a sealed segment read to its end: the next one
            return self._read_some(after, n, limit)
        return out

    def confirm(self, seq: int) -> int:
        """The central stored every batch up to ``seq``: move the cursor there (never past what was logged);
        return the batches it moved over."""
        seq = min(seq, self.committed_seq)
        if seq <= self.acked_seq:
            return 0  # dropped meanwhile (drop_oldest), or confirmed before
        moved = seq - self.acked_seq
        self.acked_rows += self._advance(seq)
        self._cursor_dirty = True
        if time.monotonic() - self._cursor_written >= CURSOR_EVERY:
            self.write_cursor()
        return moved

    def _advance(self, seq: int) -> int:
        """Move ``acked_seq`` to ``seq`` (if above it); return the rows of the batches it moved over."""
        n = seq - self.acked_seq
        if n <= 0:
            return 0
        rows = sum(self._rows[self._rows_off:self._rows_off + n])
        self._rows_off = min(self._rows_off + n, len(self._rows))
        if self._rows_off > 4096 and self._rows_off * 2 > len(self._rows):
            del self._rows[:self._rows_off]
            self._rows_off = 0
        self.acked_seq = seq
        return rows

    def write_cursor(self) -> None:
        """Persist the cursor (atomically: a temporary file, fsync, rename) and delete acknowledged segments."""
        if not self._cursor_dirty:
            return
        self._cursor_dirty = False
        self._cursor_written = time.monotonic()
        data = json.dumps({"seq": self.acked_seq, "rows": self.acked_rows, "dropped_rows": self.dropped_rows,
                           "dropped_batches": self.dropped_batches}).encode()
        tmp = self.dir / (CURSOR + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.dir / CURSOR)
        except OSError as exc:
            self._cursor_dirty = True
            log.error("edge queue: cannot write the cursor in %s: %s (batches may be sent again)", self.dir, exc)
            return
        self.wal.checkpoint(self.acked_seq)

    def _epoch(self) -> str:
        """The queue's identity: random, made with the queue, kept in ``epoch``."""
        path = self.dir / EPOCH
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            epoch = secrets.token_hex(8)
            path.write_text(epoch + "\n")
            return epoch

    def _read_cursor(self) -> dict[str, Any]:
        try:
            data = json.loads((self.dir / CURSOR).read_text())
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("edge queue: the cursor in %s cannot be read (%s): everything logged is sent again", self.dir,
                      exc)
            return {}

    # -- figures ------------------------------------------------------------------------------------------
    @property
    def backlog_rows(self) -> int:
        return self.committed_rows - self.acked_rows - self.dropped_rows

    @property
    def backlog_batches(self) -> int:
        return self.committed_seq - self.acked_seq

    @property
    def fill(self) -> float:
        return self.wal.used_bytes / self.settings.max_size

    def status(self) -> dict[str, Any]:
        w = self.wal.stats
        return {"epoch": self.epoch, "committed_seq": self.committed_seq, "acked_seq": self.acked_seq,
                "produced_rows": self.committed_rows, "acked_rows": self.acked_rows,
                "backlog_rows": self.backlog_rows, "backlog_batches": self.committed_seq - self.acked_seq,
                "backlog_bytes": self.wal.used_bytes, "max_bytes": self.settings.max_size,
                "fill": round(self.fill, 4), "dropped_rows": self.dropped_rows,
                "dropped_batches": self.dropped_batches, "refused_rows": w.refused_rows,
                "write_errors": w.write_errors}


def _next_record(f: Any) -> tuple[int, pa.RecordBatch, int] | None:
    """The complete record at the file's position (and its size), or None (the end, or a record being written)."""
    head = f.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    _, length, _, _ = HEADER.unpack(head)
    body = f.read(length)
    data = head + body
    record = SegmentReader._record(data, pa.py_buffer(data), 0)
    if isinstance(record, str):
        return None
    seq, batch, size = record
    return seq, batch, size
