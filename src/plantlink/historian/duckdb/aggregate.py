"""Bucketed aggregates, read from 1-minute rollups where whole minutes allow it and from raw samples elsewhere.

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
import pyarrow.compute as pc

from plantlink.historian.base import Aggregate
from plantlink.historian.duckdb.layout import MINUTE_US, R1M, RAW, days_between, id_filter, table
from plantlink.historian.duckdb.queries import GOOD, PARTIAL_COLS, RAW_AS_PARTIAL, Snapshot, carried_in
from plantlink.samples import TS_TYPE

_SELECT = {
    "min": "min(vmin)",
    "max": "max(vmax)",
    "mean": "sum(vsum) / sum(n)",
    "twa": (
        "(sum(integ) + sum(gap) + arg_max(last_v, last_ts) * (any_value(be) - max(last_ts)))"
        " / (any_value(be) - CASE WHEN bool_or(carried) THEN any_value(bs) ELSE min(first_ts) END)"
    ),
    "first": "arg_min(first_v, first_ts)",
    "last": "arg_max(last_v, last_ts)",
    "count": "CAST(sum(n) AS BIGINT)",
}


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
    """SELECTs of partial rows covering ``[start, end)``: rollups for the whole minutes when the interval
    is a multiple of a minute, raw samples for the edges and for other intervals."""
    ids = id_filter(tag_ids)
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
    cols = ", ".join(f"{_SELECT[a]} AS {a}" for a in aggregates)
    sql = f"""
    WITH src ({PARTIAL_COLS}, pre) AS ({" UNION ALL ".join(parts)}),
    w AS (
        SELECT *, first_ts - (((first_ts % {interval}) + {interval}) % {interval}) AS b,
               lag(last_v) OVER win AS prev_v, lag(last_ts) OVER win AS prev_ts
        FROM src WINDOW win AS (PARTITION BY tag_id ORDER BY first_ts, pre DESC)
    ),
    x AS (SELECT *, greatest(b, {start}) AS bs, least(b + {interval}, {end}) AS be FROM w WHERE NOT pre),
    y AS (
        SELECT *, CASE WHEN prev_ts IS NULL THEN 0.0
                       WHEN prev_ts >= bs THEN prev_v * (first_ts - prev_ts)
                       ELSE prev_v * (first_ts - bs) END AS gap,
                  coalesce(prev_ts < bs, false) AS carried
        FROM x
    )
    SELECT tag_id, b AS bucket, {cols} FROM y GROUP BY tag_id, b
    """
    try:
        result = cur.sql(sql).to_arrow_table()
    finally:
        if carry is not None and carry.num_rows:
            cur.unregister("_carry")
    return _order(result, tag_ids, aggregates)


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
        out[a] = col.cast(pa.int64()) if a == "count" else pc.cast(col, pa.float64())
    return pa.table(out)


def _empty(aggregates: Sequence[Aggregate]) -> pa.Table:
    cols: dict[str, pa.Array] = {"tag_id": pa.array([], pa.uint32()), "bucket": pa.array([], TS_TYPE)}
    for a in aggregates:
        cols[a] = pa.array([], pa.int64() if a == "count" else pa.float64())
    return pa.table(cols)
