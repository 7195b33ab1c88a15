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

from plantlink.historian.duckdb.layout import (
    MAX_SCALE,
    QUALITY_FN,
    RAW,
    RAW_INSERT,
    TS_FN,
    VALUE_FN,
    blocks_table,
    table,
)

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


def _zigzag(a: np.ndarray) -> np.ndarray:
    return ((a << 1) ^ (a >> 63)).view(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)


def _pack(u: np.ndarray) -> bytes:
    """uint64 values: one byte ``k`` (how many low bytes the largest needs), then those ``k`` byte planes one
    after the other, zstd (the high planes, all zeros, are neither stored nor decompressed)."""
    u = u.astype("<u8", copy=False)
    k = (int(u.max(initial=0)).bit_length() + 7) // 8
    if k == 0:
        return b"\x00"
    planes = np.ascontiguousarray(u.view(np.uint8).reshape(-1, 8)[:, :k].T)
    return bytes([k]) + bytes(CODEC.compress(planes.tobytes(), asbytes=True))


def _unpack_into(out: np.ndarray, blob: bytes) -> None:
    """Decode ``blob`` (``_pack``) into ``out``, a slice of a uint64 array of zeros viewed as (n, 8) bytes."""
    k, n = blob[0], len(out)
    if k and n:
        raw = CODEC.decompress(blob[1:], decompressed_size=k * n, asbytes=True)
        out[:, :k] = np.frombuffer(raw, np.uint8).reshape(k, n).T


def _unpack(blob: bytes, n: int) -> np.ndarray:
    out = np.zeros(n, np.uint64)
    _unpack_into(out.view(np.uint8).reshape(-1, 8), blob)
    return out


def _times(ts: np.ndarray) -> bytes:
    """A 0, then the deltas (never negative: the times are in order): one number per sample."""
    return _pack(np.diff(ts, prepend=ts[:1]).view(np.uint64))


def _segment_cumsum(x: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """The running sums of ``x`` started again at each block of ``ns`` samples; int64 sums wrap, and
    subtracting the sum before a block undoes the wrap."""
    c = np.cumsum(x)
    out: np.ndarray = c - np.repeat(c[_starts(ns)] - x[_starts(ns)], ns)
    return out


def _planes(blobs: list[bytes], ns: np.ndarray) -> np.ndarray:
    """The uint64 numbers of many blobs (``_pack``), one after the other. Each run of consecutive blobs of one
    (planes, length) (a tag's blocks are of one size but its last) is decompressed in one call (zstd decodes
    concatenated frames one after the other) and its planes written into place in one pass of numpy."""
    out = np.zeros(int(ns.sum()), np.uint64)
    as_bytes = out.view(np.uint8).reshape(-1, 8)
    lengths = ns.tolist()
    at = i = 0
    while i < len(blobs):
        k, n = (blobs[i][0] if lengths[i] else 0), lengths[i]
        j = i + 1
        while j < len(blobs) and lengths[j] == n and blobs[j][0] == k:
            j += 1
        if k and n:
            raw = CODEC.decompress(b"".join(blobs[x][1:] for x in range(i, j)), decompressed_size=k * n * (j - i),
                                   asbytes=True)
            as_bytes[at:at + n * (j - i)].reshape(j - i, n, 8)[:, :, :k] = (
                np.frombuffer(raw, np.uint8).reshape(j - i, k, n).transpose(0, 2, 1))
        at += n * (j - i)
        i = j
    return out


def _starts(ns: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(ns[:-1], dtype=np.int64)]) if len(ns) else ns


def times_many(t0: np.ndarray, ns: np.ndarray, tbs: list[bytes]) -> np.ndarray:
    """The times of many blocks, one after the other."""
    ns = ns.astype(np.int64)
    keep = ns > 0
    ns, t0 = ns[keep], t0[keep]
    tbs = [b for b, k in zip(tbs, keep.tolist(), strict=True) if k]
    if not len(ns):
        return np.zeros(0, np.int64)
    c = np.cumsum(_planes(tbs, ns).view(np.int64))  # each block's deltas start with a 0
    out: np.ndarray = c + np.repeat(t0.astype(np.int64) - c[_starts(ns)], ns)
    return out


def times_of(t0: int, n: int, tb: bytes) -> np.ndarray:
    """The ``n`` times of a block whose first is ``t0``."""
    return times_many(np.array([t0], np.int64), np.array([n]), [tb])


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


def _float_bits(v: np.ndarray) -> bytes:
    bits = v.view(np.uint64)
    return _pack(bits ^ np.concatenate([np.zeros(1, np.uint64), bits[:-1]]))


def _values(v: np.ndarray) -> tuple[int, bytes]:
    d = _scale(v)
    if d is None:
        return FLOAT, _float_bits(v)
    iv = np.round(v * 10.0**d).astype(np.int64)
    delta = _pack(_zigzag(np.diff(iv, prepend=np.int64(0))))
    low = iv.min()
    frame = _pack((iv - low).view(np.uint64)) + low.tobytes()
    return (d, delta) if len(delta) <= len(frame) else (FRAME + d, frame)


def values_many(vms: np.ndarray, ns: np.ndarray, vbs: list[bytes]) -> np.ndarray:
    """The values of many blocks, one after the other: the decimal blocks in one pass of numpy, the float ones
    (``FLOAT``) one by one."""
    ns, vms = ns.astype(np.int64), vms.astype(np.int64)
    out = np.empty(int(ns.sum()), np.float64)
    at = _starts(ns)
    kinds = ((vms < FRAME), (vms >= FRAME) & (vms != FLOAT))
    for delta, chosen in zip((True, False), kinds, strict=True):
        idx = np.flatnonzero(chosen & (ns > 0))
        if not len(idx):
            continue
        k = ns[idx]
        if delta:
            iv = _segment_cumsum(_unzigzag(_planes([vbs[i] for i in idx], k)), k)
            scale = vms[idx]
        else:
            iv = _planes([vbs[i][:-8] for i in idx], k).view(np.int64) + np.repeat(
                np.array([np.frombuffer(vbs[i][-8:], np.int64)[0] for i in idx], np.int64), k)
            scale = vms[idx] - FRAME
        out[np.repeat(np.isin(np.arange(len(ns)), idx), ns)] = iv / np.repeat(10.0**scale, k)
    for i in np.flatnonzero((vms == FLOAT) & (ns > 0)).tolist():
        out[at[i]:at[i] + ns[i]] = np.bitwise_xor.accumulate(_unpack(vbs[i], int(ns[i]))).view(np.float64)
    return out


def values_of(vm: int, n: int, vb: bytes) -> np.ndarray:
    """The ``n`` values of a block of value mode ``vm``."""
    return values_many(np.array([vm]), np.array([n]), [vb])


def qualities_many(ns: np.ndarray, qbs: list[bytes]) -> np.ndarray:
    parts = [np.frombuffer(CODEC.decompress(b, decompressed_size=n, asbytes=True), dtype=np.uint8)
             for b, n in zip(qbs, ns.tolist(), strict=True) if n]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def _encode_one(ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> Block:
    n = len(ts)
    vm, vb = _values(value)
    qb = bytes(CODEC.compress(quality.tobytes(), asbytes=True))
    block = Block(n, int(ts[0]), int(ts[-1]), vm, _times(ts), vb, qb)
    if not np.array_equal(values_of(vm, n, vb).view(np.int64), value.view(np.int64)):
        block = Block(n, block.t0, block.t1, FLOAT, block.tb, _float_bits(value), block.qb)  # never seen
    if not np.array_equal(times_of(block.t0, n, block.tb), ts):
        raise AssertionError("block times do not read back")  # deltas of int64 times always do
    return block


#: The most bytes of any one blob of a block: DuckDB keeps a longer string in overflow blocks that stay in
#: memory until a checkpoint, and a checkpoint over them ran out of a 16MB memory limit. A tag's day is cut
#: into as many blocks as that takes (about 2,000-8,000 samples each).
MAX_BLOB = 3_900
#: The samples of a tag's first block; the next ones are sized from the bytes per sample of the one before.
FIRST_BLOCK = 4_096
LARGEST_BLOCK = 65_536


def encode(ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> list[Block]:
    """One tag's samples of a day in time order, coded in blocks of at most ``MAX_BLOB`` bytes per blob and
    checked: decoding gives them back bit for bit. The blocks are of one power-of-two size (the decoder puts
    blocks of one size back together), halved from ``FIRST_BLOCK`` while a block is too wide (a larger first
    block for a tag whose first fits in a quarter of the limit)."""
    ts = np.ascontiguousarray(ts, np.int64)
    value = np.ascontiguousarray(value, np.float64)
    quality = np.ascontiguousarray(quality, np.uint8)
    out: list[Block] = []
    at, step, growing = 0, FIRST_BLOCK, True
    while at < len(ts):
        block = _encode_one(ts[at:at + step], value[at:at + step], quality[at:at + step])
        widest = max(len(block.tb), len(block.vb), len(block.qb))
        if widest > MAX_BLOB and block.n > 1:
            step, growing = step // 2, False
            continue
        if growing and block.n == step and widest * 4 <= MAX_BLOB and step < LARGEST_BLOCK:
            step *= 2
            continue
        growing = False
        out.append(block)
        at += block.n
    return out


def encode_sorted(tag: np.ndarray, ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> pa.Table:
    """Samples sorted by (tag, time), as the block rows compaction inserts: columns tag_id, n, t0, t1, vm, tb,
    vb, qb (``layout.BLOCK_COLUMNS``)."""
    starts = np.flatnonzero(np.diff(tag.astype(np.int64), prepend=-1))
    ends = [*starts[1:].tolist(), len(tag)]
    tags: list[int] = []
    blocks: list[Block] = []
    for s, e in zip(starts.tolist(), ends, strict=True):
        got = encode(ts[s:e], value[s:e], quality[s:e])
        blocks += got
        tags += [int(tag[s])] * len(got)
    return pa.table({
        "tag_id": pa.array(tags, pa.uint32()),
        "n": pa.array([b.n for b in blocks], pa.uint32()),
        "t0": pa.array([b.t0 for b in blocks], pa.int64()),
        "t1": pa.array([b.t1 for b in blocks], pa.int64()),
        "vm": pa.array([b.vm for b in blocks], pa.uint8()),
        "tb": pa.array([b.tb for b in blocks], pa.binary()),
        "vb": pa.array([b.vb for b in blocks], pa.binary()),
        "qb": pa.array([b.qb for b in blocks], pa.binary()),
    })


def _lists(flat: np.ndarray, ns: np.ndarray, kind: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(ns) + 1, np.int64)
    np.cumsum(ns, out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, kind))


def _ints(a: pa.Array) -> np.ndarray:
    return np.asarray(a.fill_null(0).to_numpy(zero_copy_only=False), np.int64)


def _blobs(a: pa.Array) -> list[bytes]:
    return [b or b"" for b in a.to_pylist()]


def _sql_ts(t0: pa.Array, n: pa.Array, tb: pa.Array) -> pa.Array:
    ns = _ints(n)
    return _lists(times_many(_ints(t0), ns, _blobs(tb)), ns, pa.int64())


def _sql_value(vm: pa.Array, n: pa.Array, vb: pa.Array) -> pa.Array:
    ns = _ints(n)
    return _lists(values_many(_ints(vm), ns, _blobs(vb)), ns, pa.float64())


def _sql_quality(n: pa.Array, qb: pa.Array) -> pa.Array:
    ns = _ints(n)
    return _lists(qualities_many(ns, _blobs(qb)), ns, pa.uint8())


def unblock(con: duckdb.DuckDBPyConnection, day: int, source: str) -> int:
    """Turn the blocks of raw day ``day`` that hold a time of ``source`` (a table of tag_id, ts) back into rows
    of samples (a stored sample written again must be deleted, and a block cannot lose one; the next
    compaction of the day codes them again). Returns how many blocks."""
    t = blocks_table(day)
    ids = [int(r) for (r,) in con.execute(
        f"SELECT DISTINCT b.rowid FROM {t} b JOIN {source} a ON b.tag_id = a.tag_id AND a.ts BETWEEN b.t0 AND b.t1"
    ).fetchall()]
    if ids:
        within = f"rowid IN ({', '.join(map(str, ids))})"
        con.execute(f"INSERT INTO {table(RAW, day)} ({RAW_INSERT}) SELECT tag_id, unnest({TS_FN}(t0, n, tb)), "
                    f"unnest({VALUE_FN}(vm, n, vb)), unnest({QUALITY_FN}(n, qb)) FROM {t} WHERE {within}")
        con.execute(f"DELETE FROM {t} WHERE {within}")
    return len(ids)


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Give ``con`` (and its cursors) the functions that decode blocks; a second call does nothing."""
    big, blob, count, mode = sqltypes.BIGINT, sqltypes.BLOB, sqltypes.UINTEGER, sqltypes.UTINYINT
    for name, fn, args, out in (
        (TS_FN, _sql_ts, [big, count, blob], big),
        (VALUE_FN, _sql_value, [mode, count, blob], sqltypes.DOUBLE),
        (QUALITY_FN, _sql_quality, [count, blob], mode),
    ):
        with contextlib.suppress(duckdb.CatalogException, duckdb.NotImplementedException):
            con.create_function(name, fn, args, duckdb.list_type(out), type="arrow")  # type: ignore[call-overload]
