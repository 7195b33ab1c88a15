"""WAL segment files: framed Arrow IPC records, read back with a torn or corrupt tail detected and dropped.

A segment is named after the sequence number of its first record (``00000000000000000042.wal``) and holds
records back to back. A record is a 20-byte header and a payload::

    magic b"PLW1" | payload length (u32) | seq (u64) | CRC-32 of seq and payload (u32)    little-endian
    payload: an Arrow IPC stream (schema message, one record batch message, end-of-stream marker)

The payload is plain Arrow (``pyarrow.ipc.open_stream`` reads it); the header only frames it and lets a
reader tell a complete record from one a crash cut short (or a flipped bit): reading stops at the first
record that is incomplete, has a wrong magic or a wrong checksum, or does not decode, and reports where.
A batch without text samples is logged without its (all null) ``text`` column; ``WriteAheadLog.replay`` gives
every record back in ``samples.SAMPLE_SCHEMA`` (``samples.conform``), records of older releases too.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

MAGIC = b"PLW1"
HEADER = struct.Struct("<4sIQI")
SEQ = struct.Struct("<Q")
EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the IPC end-of-stream marker
SUFFIX = ".wal"
MAX_PAYLOAD = 2**32 - 1
IOV_MAX = 1024


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def first_seq_of(path: Path) -> int | None:
    """The first sequence number a segment file's name gives; None for a file that is not a segment."""
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else ""
    return int(stem) if len(stem) == 20 and stem.isdigit() else None


class Encoder:
    """Frames batches as records; the schema message of each schema is serialised once."""

    def __init__(self) -> None:
        self._schemas: list[tuple[pa.Schema, bytes]] = []  # a few schemas; equals() is cheaper than hash

    def _schema(self, schema: pa.Schema) -> bytes:
        for known, data in self._schemas:
            if schema.equals(known, check_metadata=True):
                return data
        data = bytes(schema.serialize().to_pybytes())
        self._schemas = [(schema, data), *self._schemas[:7]]
        return data

    def encode(self, seq: int, batch: pa.RecordBatch) -> bytes:
        return b"".join(self.parts(seq, batch))

    def parts(self, seq: int, batch: pa.RecordBatch) -> list[bytes | pa.Buffer]:
        """The record as the pieces to write one after the other (``os.writev``): no copy of the batch's data
        beyond its serialisation."""
        batch = _compact(batch)
        body: list[bytes | pa.Buffer] = [self._schema(batch.schema), batch.serialize(), EOS]
        length = sum(len(b) if isinstance(b, bytes) else b.size for b in body)
        if length > MAX_PAYLOAD:
            raise ValueError(f"a batch of {length} bytes is too large for one WAL record")
        crc = zlib.crc32(SEQ.pack(seq))
        for b in body:
            crc = zlib.crc32(b, crc)
        return [HEADER.pack(MAGIC, length, seq, crc), *body]


def write_all(fd: int, parts: list[bytes | pa.Buffer]) -> int:
    """Write ``parts`` in order with as few ``writev`` calls as the system allows; return the bytes written."""
    views: list[memoryview] = [memoryview(p) for p in parts]
    views = [v for v in views if v.nbytes]
    total = sum(v.nbytes for v in views)
    i = 0
    while i < len(views):
        n = os.writev(fd, views[i:i + IOV_MAX])
        while n and i < len(views):
            if n >= views[i].nbytes:
                n -= views[i].nbytes
                i += 1
            else:
                views[i], n = views[i][n:], 0
    return total


def _compact(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch without text samples is logged without its ``text`` column (all null: 4 bytes of offsets a row),
    in the legacy numeric shape that replay conforms back (``samples.conform``)."""
    if batch.num_columns == 5 and batch.schema.names[4] == "text" and batch.column(4).null_count == batch.num_rows:
        return batch.select([0, 1, 2, 3])
    return batch


@dataclass
class SegmentReader:
    """Iterates ``(seq, batch)`` over a segment's good records. After iterating, ``end`` is the offset just
    past the last good record and ``problem`` says why reading stopped early (None: the file ended cleanly)."""

    path: Path
    end: int = 0
    size: int = 0
    problem: str | None = None
    last_seq: int | None = None

    def __iter__(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        data = self.path.read_bytes()
        self.size = len(data)
        buf = pa.py_buffer(data)
        pos = 0
        while pos < len(data):
            record = self._record(data, buf, pos)
            if isinstance(record, str):
                self.problem = f"{self.path.name}: at byte {pos} of {self.size}: {record}"
                return
            seq, batch, pos = record
            self.end, self.last_seq = pos, seq
            yield seq, batch

    @staticmethod
    def _record(data: bytes, buf: pa.Buffer, pos: int) -> tuple[int, pa.RecordBatch, int] | str:
        """The record at ``pos`` and the offset after it, or why there is no good record there."""
        if len(data) - pos < HEADER.size:
            return "incomplete record header"
        magic, length, seq, crc = HEADER.unpack_from(data, pos)
        body = pos + HEADER.size
        if magic != MAGIC:
            return "no record marker"
        if len(data) - body < length:
            return f"incomplete record (seq {seq}: {len(data) - body} of {length} bytes)"
        batch = decode(seq, crc, buf.slice(body, length))
        return batch if isinstance(batch, str) else (seq, batch, body + length)

    @property
    def dropped_bytes(self) -> int:
        return self.size - self.end if self.problem else 0


def decode(seq: int, crc: int, payload: pa.Buffer) -> pa.RecordBatch | str:
    """A record's batch, or why it is not a good record (a checksum that does not match, a payload that does not
    decode)."""
    if zlib.crc32(payload, zlib.crc32(SEQ.pack(seq))) != crc:
        return f"checksum mismatch (seq {seq})"
    try:
        return pa.ipc.open_stream(payload).read_next_batch()
    except (pa.ArrowException, StopIteration) as exc:
        return f"record seq {seq} does not decode: {exc}"


class Cursor:
    """Reads a segment record by record from an offset, while the committer may still append to it (held
    delivery reads back what was committed: ``next`` returns None at the end of what is written, or at a record
    that is not good, with ``problem`` saying which)."""

    def __init__(self, path: Path):
        self.path = path
        self.pos = 0
        self.problem: str | None = None
        self._f = path.open("rb", buffering=0)

    def next(self) -> tuple[int, pa.RecordBatch, int] | None:
        """``(seq, batch, bytes of the record)`` of the record at the cursor, which moves past it."""
        self._f.seek(self.pos)
        head = self._f.read(HEADER.size)
        if len(head) < HEADER.size:
            return None
        magic, length, seq, crc = HEADER.unpack(head)
        if magic != MAGIC:
            self.problem = f"{self.path.name}: no record marker at byte {self.pos}"
            return None
        payload = self._f.read(length)
        if len(payload) < length:
            return None
        batch = decode(seq, crc, pa.py_buffer(payload))
        if isinstance(batch, str):
            self.problem = f"{self.path.name}: at byte {self.pos}: {batch}"
            return None
        self.pos += HEADER.size + length
        return seq, batch, HEADER.size + length

    def close(self) -> None:
        self._f.close()
