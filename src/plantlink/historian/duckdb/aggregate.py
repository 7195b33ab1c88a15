"""Bucketed aggregates, read from 1-hour rollups where whole built hours allow it (``hourly``), from 1-minute
rollups where whole minutes allow it and from raw samples elsewhere.

Every source row is a *partial* (see ``rollup``). For one tag, ordered by time, each partial's lag is the
previous partial (or the carried-in sample from before the range). Per bucket ``[b, b + I)`` clipped to the
query range as ``[bs, be)``:

* ``integral = sum(integ) + gaps + last_v * (be - last_ts)`` where a gap is ``prev_v * (first_ts - prev_ts)``
  inside the bucket, or ``prev_v * (first_ts - bs)`` when the previous partial lies before the bucket;
* ``twa = integral / (be - bs)`` when a value was carried in, else ``integral / (be - first_ts)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.historian.base import Aggregate
from plantlink.historian.duckdb.hourly import HOUR_US, R1H
from plantlink.historian.duckdb.layout import MINUTE_US, R1M, RAW, days_between, id_filter, table
from plantlink.historian.duckdb.queries import GOOD, PARTIAL_COLS, RAW_AS_PARTIAL, Snapshot, carried_in
from plantlink.samples import TS_TYPE


def _raw_parts(snap: Snapshot, ids: str, lo: int, hi: int) -> list[str]:
    return [
        f"SELECT {RAW_AS_PARTIAL}, false FROM {table(RAW, d)} WHERE {ids} AND ts >= {lo} AND ts < {hi} AND {GOOD}"
        for d in days_between(snap.raw, lo, hi)
    ]


def _rollup_parts(snap: Snapshot, ids: str, lo: int, hi: int) -> list[str]:
    return [
        f"SELECT {PARTIAL_COLS}, false FROM {table(R1M, d)} WHERE {ids} AND bucket >= {lo} AND bucket < {hi}"
        for d in days_between(snap.r1m, lo, hi)
    ]


def sources(snap: Snapshot, tag_ids: Sequence[int], start: int, end: int, interval: int) -> list[str]:
    """SELECTs of partial rows covering ``[start, end)``: 1-hour rollups for the whole hours already built
    when the interval is a multiple of an hour, 1-minute rollups for the whole minutes when it is a multiple
    of a minute, raw samples for the edges and for other intervals."""
    ids = id_filter(tag_ids)
    if interval % HOUR_US == 0 and snap.r1h_upto:
        lo = -(-start // HOUR_US) * HOUR_US
        hi = min(end // HOUR_US * HOUR_US, snap.r1h_upto)
        if lo < hi:
            hours = f"SELECT {PARTIAL_COLS}, false FROM {R1H} WHERE {ids} AND bucket >= {lo} AND bucket < {hi}"
            return [*_minute_sources(snap, ids, start, lo, interval), hours,
                    *_minute_sources(snap, ids, hi, end, interval)]
    return _minute_sources(snap, ids, start, end, interval)


def _minute_sources(snap: Snapshot, ids: str, start: int, end: int, interval: int) -> list[str]:
    if start >= end:
        return []
    lo = -(-start // MINUTE_US) * MINUTE_US
    hi = end // MINUTE_US * MINUTE_US
    if interval % MINUTE_US or lo >= hi:
        return _raw_parts(snap, ids, start, end)
    parts = _raw_parts(snap, ids, start, lo) if start < lo else []
    parts += _rollup_parts(snap, ids, lo, hi)
    if hi < end:
        parts += _raw_parts(snap, ids, hi, end)
    return parts


def aggregate(
    cur: duckdb.DuckDBPyConnection,
    snap: Snapshot,
    tag_ids: Sequence[int],
    start: int,
    end: int,
    interval: int,
    aggregates: Sequence[Aggregate],
) -> pa.Table:
    parts = sources(snap, tag_ids, start, end, interval)
    carry = carried_in(cur, snap, tag_ids, start) if "twa" in aggregates else None
    if carry is not None and carry.num_rows:
        cur.register("_carry", carry)
        parts.append("SELECT tag_id, last_ts, last_ts, 0, NULL, NULL, NULL, NULL, last_v, 0.0, true FROM _carry")
    if not parts:
        return _empty(aggregates)
    try:
        src = cur.sql(f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS src ({PARTIAL_COLS}, pre)").to_arrow_table()
    finally:
        if carry is not None and carry.num_rows:
            cur.unregister("_carry")
    if src.num_rows == 0 or src.column("pre").combine_chunks().false_count == 0:  # nothing inside (a gap)
        return _empty(aggregates)
    return _order(combine(src, start, end, interval, aggregates), tag_ids, aggregates)


def _col(t: pa.Table, name: str, dtype: type) -> np.ndarray:
    return np.asarray(t.column(name).to_numpy(), dtype=dtype)


def combine(src: pa.Table, start: int, end: int, interval: int, aggregates: Sequence[Aggregate]) -> pa.Table:
    """Fold partial rows into one row per (tag, bucket) with numpy (see the module docstring)."""
    tag = _col(src, "tag_id", np.int64)
    first_ts, last_ts = _col(src, "first_ts", np.int64), _col(src, "last_ts", np.int64)
    pre = _col(src, "pre", bool)
    order = np.lexsort((~pre, first_ts, tag))  # a carried-in row sorts before anything at the same time
    tag, first_ts, last_ts, pre = tag[order], first_ts[order], last_ts[order], pre[order]
    last_v = _col(src, "last_v", np.float64)[order]
    has_prev = np.zeros(len(tag), dtype=bool)
    has_prev[1:] = tag[1:] == tag[:-1]
    prev_ts, prev_v = np.roll(last_ts, 1), np.roll(last_v, 1)
    keep = ~pre
    order = order[keep]
    tag, first_ts, last_ts, last_v = tag[keep], first_ts[keep], last_ts[keep], last_v[keep]
    has_prev, prev_ts, prev_v = has_prev[keep], prev_ts[keep], prev_v[keep]
    b = first_ts - first_ts % interval
    bs, be = np.maximum(b, start), np.minimum(b + interval, end)
    carried = has_prev & (prev_ts < bs)
    gap = np.where(has_prev, prev_v * (first_ts - np.where(carried, bs, prev_ts)), 0.0)
    new = np.ones(len(tag), dtype=bool)
    new[1:] = (tag[1:] != tag[:-1]) | (b[1:] != b[:-1])
    st = np.flatnonzero(new)
    en = np.append(st[1:], len(tag)) - 1
    n = np.add.reduceat(_col(src, "n", np.int64)[order], st)
    out: dict[str, np.ndarray] = {"tag_id": tag[st], "bucket": b[st]}
    for a in aggregates:
        if a == "min":
            out[a] = np.minimum.reduceat(_col(src, "vmin", np.float64)[order], st)
        elif a == "max":
            out[a] = np.maximum.reduceat(_col(src, "vmax", np.float64)[order], st)
        elif a == "mean":
            out[a] = np.add.reduceat(_col(src, "vsum", np.float64)[order], st) / n
        elif a == "twa":
            integral = np.add.reduceat(_col(src, "integ", np.float64)[order] + gap, st)
            integral += last_v[en] * (be[en] - last_ts[en])
            out[a] = integral / (be[en] - np.where(carried[st], bs[st], first_ts[st]))
        elif a == "first":
            out[a] = _col(src, "first_v", np.float64)[order][st]
        elif a == "last":
            out[a] = last_v[en]
        else:
            out[a] = n
    return pa.table(out)


def _order(result: pa.Table, tag_ids: Sequence[int], aggregates: Sequence[Aggregate]) -> pa.Table:
    """Rows in the order the tags were asked, then by bucket; typed columns."""
    pos = np.full(max(tag_ids) + 1, -1, dtype=np.int64)
    pos[np.asarray(tag_ids, dtype=np.int64)[::-1]] = np.arange(len(tag_ids))[::-1]
    tags = result.column("tag_id").to_numpy()
    buckets = result.column("bucket").to_numpy()
    order = np.lexsort((buckets, pos[tags])) if len(tags) else np.empty(0, np.int64)
    result = result.take(pa.array(order))
    out = {
        "tag_id": result.column("tag_id").cast(pa.uint32()),
        "bucket": result.column("bucket").cast(pa.int64()).cast(TS_TYPE),
    }
    for a in aggregates:
        col = result.column(a)
        out[a] = col.cast(pa.int64()) if a == "count" else col.cast(pa.float64())
    return pa.table(out)


def _empty(aggregates: Sequence[Aggregate]) -> pa.Table:
    cols: dict[str, pa.Array] = {"tag_id": pa.array([], pa.uint32()), "bucket": pa.array([], TS_TYPE)}
    for a in aggregates:
        cols[a] = pa.array([], pa.int64() if a == "count" else pa.float64())
    return pa.table(cols)
