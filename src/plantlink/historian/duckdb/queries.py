"""Read queries over the day partitions: raw, aggregate, downsample. Functions take a cursor and a snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from tsdownsample import MinMaxLTTBDownsampler

from plantlink.errors import QueryError
from plantlink.historian.base import AGGREGATES, RAW_MANY_SCHEMA
from plantlink.historian.duckdb import blockread
from plantlink.historian.duckdb.layout import (
    MINUTE_US,
    day_of,
    days_between,
    id_filter,
    r1m,
    raw_good,
)
from plantlink.historian.duckdb.layout import raw as raw_rows
from plantlink.samples import TS_TYPE

PARTIAL_COLS = "tag_id, first_ts, last_ts, n, vmin, vmax, vsum, first_v, last_v, integ"
# typed: a bare 0.0 is a DECIMAL, which Arrow hands to numpy as Python objects
RAW_AS_PARTIAL = "tag_id, ts, ts, 1::UINTEGER, value, value, value, value, value, 0.0::DOUBLE"


@dataclass(frozen=True)
class Snapshot:
    """The day partitions a query may read."""

    raw: frozenset[int]
    r1m: frozenset[int]
    r1h_upto: int = 0  # 1-hour rollups are complete before this instant
    r1d_upto: int = 0  # 1-day rollups likewise
    marked: frozenset[int] = frozenset()  # days whose minutes may hold a sparse tag's marker (``layout.r1m``)


def minutes(snap: Snapshot, day: int) -> str:
    """``layout.r1m`` of ``day``, with the raw branch where the day may hold markers."""
    return r1m(day, day in snap.marked and day in snap.raw)


def check_range(start_us: int, end_us: int) -> None:
    if not isinstance(start_us, int) or not isinstance(end_us, int):
        raise QueryError("start_us and end_us must be integer microseconds", field="start_us")
    if start_us >= end_us:
        raise QueryError(f"empty or reversed range: start_us={start_us} >= end_us={end_us}", field="end_us")


def check_aggregates(aggregates: Sequence[str]) -> None:
    unknown = [a for a in aggregates if a not in AGGREGATES]
    if unknown or not aggregates:
        raise QueryError(f"unknown aggregates {unknown}; choose from {list(AGGREGATES)}", field="aggregates")


def _fetch(cur: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    return cur.sql(sql).to_arrow_table()


def raw(
    cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_id: int, start_us: int, end_us: int, limit: int
) -> pa.Table:
    """Numeric samples of one tag (every quality), time order, at most ``limit``."""
    days = days_between(snap.raw, start_us, end_us)
    parts = [
        f"SELECT ts, value, quality FROM {raw_rows(d)} WHERE tag_id = {tag_id} AND ts >= {start_us} AND ts < {end_us}"
        for d in days
    ]
    if not parts:
        return _ts_out(
            pa.table(
                {
                    "ts": pa.array([], pa.int64()),
                    "value": pa.array([], pa.float64()),
                    "quality": pa.array([], pa.uint8()),
                }
            )
        )
    # Read unordered, a few days at a time in time order, and sorted here until ``limit`` rows are in: DuckDB's
    # ORDER BY ... LIMIT of a million rows runs out of a 32MB memory limit.
    got: list[pa.Table] = []
    n = 0
    for i in range(0, len(parts), DAYS_PER_READ):
        t = _by_time(_fetch(cur, " UNION ALL ".join(parts[i:i + DAYS_PER_READ])))
        got.append(t)
        n += t.num_rows
        if n >= limit:
            break
    return _ts_out(pa.concat_tables(got).slice(0, limit))


#: Day partitions read by one query of ``raw`` (the days are disjoint in time: each read is sorted on its own).
DAYS_PER_READ = 16


def _time_order(ts: np.ndarray) -> np.ndarray | None:
    """The stable order that sorts ``ts``, or None when it is sorted already (the usual case: DuckDB keeps
    insertion order and chunks are written sorted by (tag, ts))."""
    if len(ts) < 2 or bool(np.all(ts[1:] >= ts[:-1])):
        return None
    return np.argsort(ts, kind="stable")


def _by_time(t: pa.Table) -> pa.Table:
    """``t`` sorted by ``ts`` (stable); as it is when it is already."""
    order = _time_order(t.column("ts").cast(pa.int64()).to_numpy())
    return t if order is None else t.take(pa.array(order))


def raw_many(
    cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_ids: Sequence[int], start_us: int, end_us: int, limit: int
) -> pa.Table:
    """Numeric samples of several tags (every quality), by tag then time, at most ``limit`` per tag: one query
    over the day partitions instead of one per tag."""
    days = days_between(snap.raw, start_us, end_us)
    if not days or not tag_ids:
        return RAW_MANY_SCHEMA.empty_table()
    ids = id_filter(tag_ids)
    parts = " UNION ALL ".join(
        f"SELECT tag_id, ts, value, quality FROM {raw_rows(d)} WHERE {ids} AND ts >= {start_us} AND ts < {end_us}"
        for d in days
    )
    # Read at most ``limit`` rows per tag's worth in all, then cut each tag to ``limit`` here: a count per tag
    # first (to know whether a window is needed) was a second pass over the data. Only when the read hits the
    # bound in all (one tag's rows may have crowded out the next tags') does a window per tag cut them.
    # Read unordered and sorted here: DuckDB's sort of a million rows runs out of a 32MB limit.
    bound = limit * len(tag_ids)
    t = _fetch(cur, f"SELECT * FROM ({parts}) LIMIT {bound + 1}")
    if t.num_rows > bound:
        keep = f" QUALIFY row_number() OVER (PARTITION BY tag_id ORDER BY ts) <= {limit}"
        t = _fetch(cur, f"SELECT * FROM ({parts}){keep} ORDER BY tag_id, ts")
    else:
        t = _first_per_tag(_by_tag_and_time(t), limit)
    return pa.table([t.column(f.name).cast(f.type) for f in RAW_MANY_SCHEMA], schema=RAW_MANY_SCHEMA)


def _by_tag_and_time(t: pa.Table) -> pa.Table:
    """``t`` sorted by (tag_id, ts); as it is when it is already."""
    tag, ts = t.column("tag_id").to_numpy(), t.column("ts").to_numpy()
    if len(tag) < 2:
        return t
    order = np.lexsort((ts, tag))
    if np.all(order[1:] > order[:-1]):
        return t
    return t.take(pa.array(order))


def _first_per_tag(t: pa.Table, limit: int) -> pa.Table:
    """The first ``limit`` rows of each tag of ``t`` (sorted by tag id)."""
    tids = t.column("tag_id").to_numpy()
    if len(tids) <= limit:
        return t
    starts = np.flatnonzero(np.r_[True, tids[1:] != tids[:-1]])
    rank = np.arange(len(tids)) - np.repeat(starts, np.diff(np.r_[starts, len(tids)]))
    return t if bool((rank < limit).all()) else t.filter(pa.array(rank < limit))


def raw_text(cur: duckdb.DuckDBPyConnection, tag_id: int, start_us: int, end_us: int, limit: int) -> pa.Table:
    sql = (
        f"SELECT ts, value, quality FROM text_samples WHERE tag_id = {tag_id} AND ts >= {start_us} "
        f"AND ts < {end_us} ORDER BY ts LIMIT {limit}"
    )
    return _ts_out(_fetch(cur, sql))


def _ts_out(t: pa.Table, names: Sequence[str] = ("ts",)) -> pa.Table:
    for name in names:
        i = t.schema.get_field_index(name)
        t = t.set_column(i, name, t.column(name).cast(pa.int64()).cast(TS_TYPE))
    return t


def _series(cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_id: int, start_us: int, end_us: int):  # type: ignore[no-untyped-def]
    """Good samples of one tag in time order as numpy arrays. Without ORDER BY: DuckDB keeps insertion order
    and chunks are sorted by (tag, ts), so numpy only sorts when writes came out of order."""
    t = blockread.good(cur, days_between(snap.raw, start_us, end_us), f"tag_id = {tag_id}", start_us, end_us
                       ).combine_chunks()
    ts, value = t.column("ts").to_numpy(), t.column("value").to_numpy()
    order = _time_order(ts)
    if order is not None:
        ts, value = ts[order], value[order]
    return ts.astype(np.int64, copy=False), value.astype(np.float64, copy=False)


def downsample(
    cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_id: int, start_us: int, end_us: int, n_out: int
) -> pa.Table:
    """Good samples reduced by MinMaxLTTB to ``n_out - 2`` points, plus the global min and max."""
    ts, value = _series(cur, snap, tag_id, start_us, end_us)
    if len(ts) > n_out:
        idx = MinMaxLTTBDownsampler().downsample(ts, value, n_out=n_out - 2, parallel=len(ts) > 200_000)
        idx = np.union1d(idx.astype(np.int64), np.array([np.argmin(value), np.argmax(value)], dtype=np.int64))
        ts, value = ts[idx], value[idx]
    return pa.table({"ts": pa.array(ts, pa.int64()).cast(TS_TYPE), "value": pa.array(value, pa.float64())})


def last_before(cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_id: int, before_us: int, text: bool
                ) -> pa.Table:
    """The last sample of one tag before ``before_us`` (every quality): the day partitions newest first, one
    indexed look each, until one holds a sample (text tags: their one table)."""
    if text:
        return _ts_out(_fetch(cur, f"SELECT ts, value, quality FROM text_samples WHERE tag_id = {tag_id} "
                                   f"AND ts < {before_us} ORDER BY ts DESC LIMIT 1"))
    last = day_of(before_us - 1)
    for d in sorted((d for d in snap.raw if d <= last), reverse=True):
        t = _fetch(cur, f"SELECT ts, value, quality FROM {raw_rows(d)} WHERE tag_id = {tag_id} "
                        f"AND ts < {before_us} ORDER BY ts DESC LIMIT 1")
        if t.num_rows:
            return _ts_out(t)
    return raw(cur, Snapshot(frozenset(), frozenset()), tag_id, before_us, before_us + 1, 0)


def carried_in(cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_ids: Sequence[int], start_us: int) -> pa.Table:
    """The last good sample before ``start_us`` per tag (``tag_id``, ``last_ts``, ``last_v``): raw samples of
    the minute that holds ``start_us``, then rollups (raw where a day has none) day by day backwards, until
    every tag has one or the data ends."""
    missing = set(tag_ids)
    found: list[pa.Table] = []
    floor = start_us - start_us % MINUTE_US
    first_day = day_of(start_us - 1)
    steps: list[str] = []
    if floor < start_us and day_of(floor) in snap.raw:
        steps.append(
            f"SELECT tag_id, ts AS last_ts, value AS last_v FROM {raw_good(day_of(floor))} WHERE ts >= {floor}"
        )
    for d in sorted((d for d in snap.raw | snap.r1m if d <= first_day), reverse=True):
        if d in snap.r1m:
            steps.append(f"SELECT tag_id, last_ts, last_v FROM {minutes(snap, d)} WHERE bucket < {floor}")
        else:
            steps.append(f"SELECT tag_id, ts AS last_ts, value AS last_v FROM {raw_good(d)}")
    for src in steps:
        if not missing:
            break
        sql = (
            f"SELECT tag_id, max(last_ts) AS last_ts, arg_max(last_v, last_ts) AS last_v FROM ({src}) "
            f"WHERE {id_filter(missing)} AND last_ts < {start_us} GROUP BY tag_id"
        )
        t = _fetch(cur, sql)
        found.append(t)
        missing -= set(t.column("tag_id").to_pylist())
    if not found:
        return pa.table(
            {
                "tag_id": pa.array([], pa.uint32()),
                "last_ts": pa.array([], pa.int64()),
                "last_v": pa.array([], pa.float64()),
            }
        )
    return pa.concat_tables(found)
