"""Compacted raw days as one block per tag and day: times, values and qualities each an entropy-coded blob.

DuckDB's column codecs (bit-packing against a frame's minimum or in delta mode, ALP, RLE) pay for the widest
value of each frame, not for the information in the data, and zstd is offered for strings only. So
compaction codes each tag's day the way VictoriaMetrics codes a block of a series (``bench/historian_codec.py``
measured it first; docs/benchmarks.md):

* **times** (``tb``): the first time is the row's ``t0``; then the first delta and the deltas of deltas (zeros
  for regular sampling), zigzag-coded, each of the 8 byte planes apart (the high bytes of small numbers are
  runs of zeros), zstd;
* **values** (``vb``), by ``vm`` (the value mode): ``0..MAX_SCALE`` every value is an exact decimal with that
  many digits: the scaled integers' deltas; ``FRAME + d``: the scaled integers minus their minimum (8 bytes
  at the end), when smaller; ``FLOAT``: the float64 bits, each XOR the one before (NaN, infinities, -0.0 and
  values of no decimal scale), byte planes, zstd;
* **qualities** (``qb``): the bytes, zstd.

Every block is decoded and compared bit for bit with its input before it is written (a mismatch is coded as
``FLOAT``). Readers see the samples through ``layout.raw(day)``: SQL functions registered on each connection
(``register``) decode the blobs into lists that the query unnests; ``decode`` gives numpy arrays to a reader
that folds in Python.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from duckdb import sqltypes

from plantlink.historian.duckdb.layout import MAX_SCALE, QUALITY_FN, TS_FN, VALUE_FN

CODEC = pa.Codec("zstd", compression_level=3)
FRAME = 16
FLOAT = 255
_LIMIT = 2.0**53


@dataclass(frozen=True)
class Block:
    """One tag's day, coded."""

    n: int
    t0: int
    t1: int
    vm: int
    tb: bytes
    vb: bytes
    qb: bytes

    @property
    def size(self) -> int:
        return len(self.tb) + len(self.vb) + len(self.qb)


def _zigzag(a: np.ndarray) -> np.ndarray:
    return ((a << 1) ^ (a >> 63)).view(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)


def _pack(u: np.ndarray) -> bytes:
    """uint64 values: the 8 byte planes one after the other, zstd."""
    planes = np.ascontiguousarray(u.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8).T)
    return bytes(CODEC.compress(planes.tobytes(), asbytes=True))


def _unpack(blob: bytes, n: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0, np.uint64)
    raw = np.frombuffer(CODEC.decompress(blob, decompressed_size=8 * n, asbytes=True), dtype=np.uint8)
    return np.ascontiguousarray(raw.reshape(8, n).T).view("<u8").ravel()


def _times(ts: np.ndarray) -> bytes:
    d1 = np.diff(ts)
    return _pack(_zigzag(np.concatenate([d1[:1], np.diff(d1)])))


def times_of(t0: int, n: int, tb: bytes) -> np.ndarray:
    """The ``n`` times of a block whose first is ``t0``."""
    if n <= 1:
        return np.full(n, t0, np.int64)
    d = _unzigzag(_unpack(tb, n - 1))
    deltas = np.cumsum(d)  # d[0] is the first delta, then deltas of deltas
    out = np.empty(n, np.int64)
    out[0] = t0
    np.cumsum(deltas, out=out[1:])
    out[1:] += t0
    return out


def _scale(v: np.ndarray) -> int | None:
    """The fewest decimals (0..MAX_SCALE) holding every value exactly; None if none does (or a value is not
    finite, is -0.0, or beyond 2 ** 53 once scaled)."""
    if not np.isfinite(v).all() or (np.signbit(v) & (v == 0)).any():
        return None
    for d in range(MAX_SCALE + 1):
        k = np.round(v * 10.0**d)
        if np.abs(k).max(initial=0) >= _LIMIT:
            return None
        if np.array_equal(k / 10.0**d, v):
            return d
    return None


def _values(v: np.ndarray) -> tuple[int, bytes]:
    d = _scale(v)
    if d is None:
        bits = v.view(np.uint64)
        return FLOAT, _pack(bits ^ np.concatenate([np.zeros(1, np.uint64), bits[:-1]]))
    iv = np.round(v * 10.0**d).astype(np.int64)
    delta = _pack(_zigzag(np.diff(iv, prepend=np.int64(0))))
    low = iv.min()
    frame = _pack((iv - low).view(np.uint64)) + low.tobytes()
    return (d, delta) if len(delta) <= len(frame) else (FRAME + d, frame)


def values_of(vm: int, n: int, vb: bytes) -> np.ndarray:
    """The ``n`` values of a block of value mode ``vm``."""
    if n == 0:
        return np.zeros(0, np.float64)
    if vm == FLOAT:
        x = _unpack(vb, n)
        return np.bitwise_xor.accumulate(x).view(np.float64)
    if vm >= FRAME:
        iv = _unpack(vb[:-8], n).view(np.int64) + np.frombuffer(vb[-8:], np.int64)[0]
        return iv / 10.0 ** (vm - FRAME)
    return np.cumsum(_unzigzag(_unpack(vb, n))) / 10.0**vm


def qualities_of(n: int, qb: bytes) -> np.ndarray:
    if n == 0:
        return np.zeros(0, np.uint8)
    return np.frombuffer(CODEC.decompress(qb, decompressed_size=n, asbytes=True), dtype=np.uint8)


def encode(ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> Block:
    """One tag's samples of a day in time order, coded and checked: decoding gives them back bit for bit."""
    ts = np.ascontiguousarray(ts, np.int64)
    value = np.ascontiguousarray(value, np.float64)
    quality = np.ascontiguousarray(quality, np.uint8)
    n = len(ts)
    vm, vb = _values(value)
    block = Block(n, int(ts[0]), int(ts[-1]), vm, _times(ts), vb, bytes(CODEC.compress(quality.tobytes(), asbytes=True)))
    if not np.array_equal(values_of(vm, n, vb).view(np.int64), value.view(np.int64)):
        bits = value.view(np.uint64)  # never seen: a decimal that does not read back is kept as its bits
        block = Block(n, block.t0, block.t1, FLOAT, block.tb,
                      _pack(bits ^ np.concatenate([np.zeros(1, np.uint64), bits[:-1]])), block.qb)
    if not np.array_equal(times_of(block.t0, n, block.tb), ts):
        raise AssertionError("block times do not read back")  # deltas of int64 times always do
    return block


def encode_sorted(tag: np.ndarray, ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> pa.Table:
    """Samples sorted by (tag, time), a block per tag, as the rows compaction inserts: columns tag_id, n, ts
    (NULL), t0, t1, vm, tb, vb, qb."""
    starts = np.flatnonzero(np.diff(tag.astype(np.int64), prepend=-1))
    ends = [*starts[1:].tolist(), len(tag)]
    blocks = [encode(ts[s:e], value[s:e], quality[s:e]) for s, e in zip(starts.tolist(), ends, strict=True)]
    return pa.table({
        "tag_id": pa.array(tag[starts], pa.uint32()),
        "n": pa.array([b.n for b in blocks], pa.uint32()),
        "t0": pa.array([b.t0 for b in blocks], pa.int64()),
        "t1": pa.array([b.t1 for b in blocks], pa.int64()),
        "vm": pa.array([b.vm for b in blocks], pa.uint8()),
        "tb": pa.array([b.tb for b in blocks], pa.binary()),
        "vb": pa.array([b.vb for b in blocks], pa.binary()),
        "qb": pa.array([b.qb for b in blocks], pa.binary()),
    })


def _lists(parts: list[np.ndarray], kind: pa.DataType) -> pa.ListArray:
    offsets = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, kind))


def _blobs(a: pa.Array) -> list[bytes | None]:
    return a.to_pylist()  # type: ignore[no-any-return]


def _sql_ts(t0: pa.Array, n: pa.Array, tb: pa.Array) -> pa.Array:
    return _lists([times_of(a or 0, k or 0, b or b"") for a, k, b in zip(t0.to_pylist(), n.to_pylist(), _blobs(tb),
                                                                       strict=True)], pa.int64())


def _sql_value(vm: pa.Array, n: pa.Array, vb: pa.Array) -> pa.Array:
    return _lists([values_of(m or 0, k or 0, b or b"") for m, k, b in zip(vm.to_pylist(), n.to_pylist(), _blobs(vb),
                                                                        strict=True)], pa.float64())


def _sql_quality(n: pa.Array, qb: pa.Array) -> pa.Array:
    return _lists([qualities_of(k or 0, b or b"") for k, b in zip(n.to_pylist(), _blobs(qb), strict=True)],
                  pa.uint8())


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Give ``con`` (and its cursors) the functions that decode blocks; a second call does nothing."""
    big, blob, count, mode = sqltypes.BIGINT, sqltypes.BLOB, sqltypes.UINTEGER, sqltypes.UTINYINT
    for name, fn, args, out in (
        (TS_FN, _sql_ts, [big, count, blob], big),
        (VALUE_FN, _sql_value, [mode, count, blob], sqltypes.DOUBLE),
        (QUALITY_FN, _sql_quality, [count, blob], mode),
    ):
        with contextlib.suppress(duckdb.CatalogException, duckdb.NotImplementedException):
            con.create_function(name, fn, args, duckdb.list_type(out), type="arrow")  # type: ignore[arg-type]
