"""Bucketed aggregates, read from the rollup pyramid: 1-day and 1-hour rollups where whole built days or hours
allow it (``hourly``), 1-minute rollups where whole minutes allow it, raw samples elsewhere. Intervals that are
not whole minutes read only raw samples (three columns), folded by ``rawagg``.

The marked tags of a day whose minutes compaction left in raw (``settings.sparse_minutes``: ``layout.r1m``)
are not read as one partial row per raw sample: their good raw samples over the day's whole minutes (three
columns) are folded here into one partial per bucket of the interval (``rollup.fold``), the other tags' minutes
read as stored (``Section``).

Every source row is a *partial* (see ``rollup``). For one tag, ordered by time, each partial's lag is the
previous partial (or the carried-in sample from before the range). Per bucket ``[b, b + I)`` clipped to the
query range as ``[bs, be)``:

* ``integral = sum(integ) + gaps + last_v * (be - last_ts)`` where a gap is ``prev_v * (first_ts - prev_ts)``
  inside the bucket, or ``prev_v * (first_ts - bs)`` when the previous partial lies before the bucket;
* ``twa = integral / (be - bs)`` when a value was carried in, else ``integral / (be - first_ts)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.historian.base import Aggregate
from plantlink.historian.duckdb import blockread
from plantlink.historian.duckdb.hourly import HOUR_US, R1D, R1H
from plantlink.historian.duckdb.layout import DAY_US, MINUTE_US, R1M, days_between, id_filter, r1m, raw_good, table
from plantlink.historian.duckdb.queries import PARTIAL_COLS, RAW_AS_PARTIAL, Snapshot, carried_in
from plantlink.historian.duckdb.rawagg import combine_raw, sort_order
from plantlink.historian.duckdb.rollup import fold
from plantlink.samples import TS_TYPE

#: Tags x microseconds of raw samples read and folded at a time: 12 tags x 1 day (1.04 M samples at 1 Hz).
#: 100 tags over a day at 10 s: 238 MiB of peak RSS above the open store (344 in groups of 25 tags, 600 in
#: one read) and no slower (groups of 6 were not faster and took 163 MiB).
GROUP_TAG_US = 12 * DAY_US
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="historian-rawagg")
#: Tags x microseconds of a marked day's raw samples read and folded into partial rows at a time (``_sparse``):
#: a day of 100 tags (864,000 samples every 10 s; a marked tag has fewer than 30 a minute, at most 4.3 M): a
#: query over many tags and days holds one group's samples and the partial rows folded so far.
SPARSE_GROUP_TAG_US = 100 * DAY_US


class Section(NamedTuple):
    """The whole minutes ``[lo, hi)`` of a day whose minute table may hold markers: its marked tags' raw
    samples there are folded by ``_sparse``, its other tags' minutes read as stored (``stored``: the SELECT of
    partial rows, left out when every tag asked is marked)."""

    day: int
    lo: int
    hi: int
    stored: str


Part = str | Section


def _raw_parts(snap: Snapshot, ids: str, lo: int, hi: int) -> list[Part]:
    return [
        f"SELECT {RAW_AS_PARTIAL}, false FROM {raw_good(d)} WHERE {ids} AND ts >= {lo} AND ts < {hi}"
        for d in days_between(snap.raw, lo, hi)
    ]


def _rollup_parts(snap: Snapshot, ids: str, lo: int, hi: int) -> list[Part]:
    parts: list[Part] = []
    for d in days_between(snap.r1m, lo, hi):
        stored = f"SELECT {PARTIAL_COLS}, false FROM {r1m(d, False)} WHERE {ids} AND bucket >= {lo} AND bucket < {hi}"
        marked = d in snap.marked and d in snap.raw
        parts.append(Section(d, max(lo, d * DAY_US), min(hi, (d + 1) * DAY_US), stored) if marked else stored)
    return parts


def _levels(snap: Snapshot) -> list[tuple[int, str, int]]:
    """The built rollup levels above the minutes, coarsest first: (bucket width, table, built up to)."""
    return [(DAY_US, R1D, snap.r1d_upto), (HOUR_US, R1H, snap.r1h_upto)]


def sources(snap: Snapshot, tag_ids: Sequence[int], start: int, end: int, interval: int) -> list[Part]:
    """SELECTs of partial rows covering ``[start, end)``, from the coarsest level whose bucket divides the
    interval: 1-day rollups for the whole built days, 1-hour rollups for the whole built hours, 1-minute
    rollups for the whole minutes, raw samples for the edges and for other intervals; and the ``Section`` of
    each day whose minutes may hold markers."""
    return _pyramid(snap, id_filter(tag_ids), start, end, interval, _levels(snap))


def _pyramid(
    snap: Snapshot, ids: str, start: int, end: int, interval: int, levels: list[tuple[int, str, int]]
) -> list[Part]:
    if start >= end:
        return []
    if not levels:
        return _minute_sources(snap, ids, start, end, interval)
    (width, name, upto), rest = levels[0], levels[1:]
    if interval % width == 0 and upto:
        lo = -(-start // width) * width
        hi = min(end // width * width, upto)
        if lo < hi:
            rows = f"SELECT {PARTIAL_COLS}, false FROM {name} WHERE {ids} AND bucket >= {lo} AND bucket < {hi}"
            return [*_pyramid(snap, ids, start, lo, interval, rest), rows,
                    *_pyramid(snap, ids, hi, end, interval, rest)]
    return _pyramid(snap, ids, start, end, interval, rest)


def _minute_sources(snap: Snapshot, ids: str, start: int, end: int, interval: int) -> list[Part]:
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
    if interval % MINUTE_US:
        return _from_raw(cur, snap, tag_ids, start, end, interval, aggregates)
    plan = sources(snap, tag_ids, start, end, interval)
    sections = [p for p in plan if isinstance(p, Section)]
    marked = _marked(cur, sections, tag_ids)
    parts = [p if isinstance(p, str) else p.stored for p in plan
             if isinstance(p, str) or set(marked.get(p.day, ())) != set(tag_ids)]
    found = [] if not parts else [cur.sql(f"SELECT {PARTIAL_COLS} FROM ({' UNION ALL '.join(parts)}) AS src "
                                          f"({PARTIAL_COLS}, pre)").to_arrow_table()]
    sparse = _sparse(cur, sections, marked, interval)
    if sparse is not None:
        found.append(sparse.cast(found[0].schema) if found else sparse)
    src = pa.concat_tables(found) if found else None
    if src is None or src.num_rows == 0:
        return _empty(aggregates)
    carry = carried_in(cur, snap, tag_ids, start) if "twa" in aggregates else None
    src = src.combine_chunks()  # one chunk per column: to_numpy of many small chunks was most of the time
    return _order(combine(src, start, end, interval, aggregates, carry), tag_ids, aggregates)


def _marked(cur: duckdb.DuckDBPyConnection, sections: list[Section], tag_ids: Sequence[int]
            ) -> dict[int, list[int]]:
    """Per day of ``sections``, the tags among ``tag_ids`` its minute table holds a marker of (one query)."""
    if not sections:
        return {}
    ids = id_filter(tag_ids)
    marks = " UNION ALL ".join(f"SELECT {d}::BIGINT, tag_id FROM {table(R1M, d)} WHERE n = 0 AND {ids}"
                               for d in sorted({s.day for s in sections}))
    marked: dict[int, list[int]] = {}
    for d, tag in cur.execute(marks).fetchall():
        marked.setdefault(int(d), []).append(int(tag))
    return marked


def _sparse(cur: duckdb.DuckDBPyConnection, sections: list[Section], marked: dict[int, list[int]], interval: int
            ) -> pa.Table | None:
    """The partial rows (``PARTIAL_COLS``), one per tag and bucket of ``interval`` in each section, of the
    tags ``marked`` in its day (``layout.r1m``), folded from their good raw samples (None: no such sample):
    a section's tags in groups (``SPARSE_GROUP_TAG_US``), each read and folded before the next is read."""
    found = []
    for s in sections:
        tags = sorted(marked.get(s.day, ()))
        per = max(1, SPARSE_GROUP_TAG_US // (s.hi - s.lo))
        for i in range(0, len(tags), per):
            part = _fold_sparse(cur, s, tags[i:i + per], interval)
            if part is not None:
                found.append(part)
    return pa.concat_tables(found) if found else None


def _fold_sparse(cur: duckdb.DuckDBPyConnection, s: Section, tags: list[int], interval: int) -> pa.Table | None:
    src = blockread.good(cur, [s.day], id_filter(tags), s.lo, s.hi).combine_chunks()
    if src.num_rows == 0:
        return None
    tag = np.asarray(src.column("tag_id").to_numpy(), dtype=np.uint32)
    ts = np.asarray(src.column("ts").to_numpy(), dtype=np.int64)
    v = np.asarray(src.column("value").to_numpy(), dtype=np.float64)
    order = sort_order(tag, ts, s.lo, s.hi)
    if order is not None:
        tag, ts, v = tag[order], ts[order], v[order]
    cols = fold(tag, ts, v, interval)
    return pa.table({c: cols[c] for c in PARTIAL_COLS.split(", ")})


def _from_raw(cur: duckdb.DuckDBPyConnection, snap: Snapshot, tag_ids: Sequence[int], start: int, end: int,
              interval: int, aggregates: Sequence[Aggregate]) -> pa.Table:
    """Intervals that are not whole minutes: the good raw samples (three columns) folded by ``rawagg``; many
    tags over a long range in groups of whole tags (``GROUP_TAG_US``), two at a time on two threads, each
    on a cursor of its own (DuckDB and numpy release the GIL: reading one group overlaps folding another,
    and only two groups' samples are in memory at once)."""
    days = days_between(snap.raw, start, end)
    if not days:
        return _empty(aggregates)
    ids = sorted(set(tag_ids))
    per = max(1, GROUP_TAG_US // (end - start))
    groups = [ids[i:i + per] for i in range(0, len(ids), per)]
    if len(groups) == 1:
        parts = [_fold_raw(cur, days, ids, start, end, interval, aggregates, snap)]
    else:
        runs = [_POOL.submit(_fold_raw_on, cur.cursor(), days, g, start, end, interval, aggregates, snap)
                for g in groups]
        parts = [r.result() for r in runs]
    found = [p for p in parts if p is not None]
    return _order(pa.concat_tables(found), tag_ids, aggregates) if found else _empty(aggregates)


def _fold_raw_on(cur: duckdb.DuckDBPyConnection, days: list[int], ids: list[int], start: int, end: int,
                 interval: int, aggregates: Sequence[Aggregate], snap: Snapshot) -> pa.Table | None:
    """``_fold_raw`` on a cursor of its own (a DuckDB cursor serves one thread at a time), closed after."""
    try:
        return _fold_raw(cur, days, ids, start, end, interval, aggregates, snap)
    finally:
        cur.close()


def _fold_raw(cur: duckdb.DuckDBPyConnection, days: list[int], ids: list[int], start: int, end: int,
              interval: int, aggregates: Sequence[Aggregate], snap: Snapshot) -> pa.Table | None:
    """The raw fold of ``ids`` (None when they have no good sample in the range)."""
    src = blockread.good(cur, days, id_filter(ids), start, end)
    if src.num_rows == 0:
        return None
    carry = carried_in(cur, snap, ids, start) if "twa" in aggregates else None
    return combine_raw(src.combine_chunks(), start, end, interval, aggregates, carry)


#: The partial columns of a raw sample (``n = 1``, ``integ = 0``) when only ``tag_id, ts, value`` were read.
_RAW_ALIAS = {"first_ts": "ts", "last_ts": "ts", "vmin": "value", "vmax": "value", "vsum": "value",
              "first_v": "value", "last_v": "value"}


def _col(t: pa.Table, name: str, dtype: type) -> np.ndarray:
    if name not in t.schema.names:
        if name in ("n", "integ"):
            return np.full(t.num_rows, 1 if name == "n" else 0, dtype=dtype)
        name = _RAW_ALIAS[name]
    return np.asarray(t.column(name).to_numpy(), dtype=dtype)


def _time_order(tag: np.ndarray, first_ts: np.ndarray) -> np.ndarray | None:
    """The order that sorts rows by (tag, first_ts), or None when they already are (compacted days read in
    order are): a sort of millions of raw rows was most of a sub-minute aggregate's time."""
    if len(tag) < 2:
        return None
    dt = np.diff(tag)
    if bool(np.all((dt > 0) | ((dt == 0) & (np.diff(first_ts) >= 0)))):
        return None
    order: np.ndarray = np.lexsort((first_ts, tag))
    return order


def _previous(tag: np.ndarray, last_ts: np.ndarray, last_v: np.ndarray, carry: pa.Table | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (sorted by tag, time): whether a partial precedes it, and that partial's last ts and value; the
    first row of a tag takes the carried-in sample of that tag (one per tag, before the range) if any."""
    has_prev = np.zeros(len(tag), dtype=bool)
    has_prev[1:] = tag[1:] == tag[:-1]
    prev_ts, prev_v = np.roll(last_ts, 1), np.roll(last_v, 1)
    if carry is not None and carry.num_rows:
        firsts = np.flatnonzero(~has_prev)
        ctag = _col(carry, "tag_id", np.int64)
        by_tag = np.argsort(ctag, kind="stable")
        pos = np.minimum(np.searchsorted(ctag[by_tag], tag[firsts]), len(ctag) - 1)
        match = ctag[by_tag][pos] == tag[firsts]
        rows, src = firsts[match], by_tag[pos[match]]
        has_prev[rows] = True
        prev_ts[rows] = _col(carry, "last_ts", np.int64)[src]
        prev_v[rows] = _col(carry, "last_v", np.float64)[src]
    return has_prev, prev_ts, prev_v


def combine(src: pa.Table, start: int, end: int, interval: int, aggregates: Sequence[Aggregate],
            carry: pa.Table | None = None) -> pa.Table:
    """Fold partial rows into one row per (tag, bucket) with numpy (see the module docstring); ``carry`` holds
    the last good sample before ``start`` per tag (``tag_id``, ``last_ts``, ``last_v``) for twa."""
    tag = _col(src, "tag_id", np.int64)
    first_ts = _col(src, "first_ts", np.int64)
    order = _time_order(tag, first_ts)

    def col(name: str, dtype: type) -> np.ndarray:
        a = _col(src, name, dtype)
        return a if order is None else a[order]

    if order is not None:
        tag, first_ts = tag[order], first_ts[order]
    last_ts, last_v = col("last_ts", np.int64), col("last_v", np.float64)
    has_prev, prev_ts, prev_v = _previous(tag, last_ts, last_v, carry)
    b = first_ts - first_ts % interval
    bs, be = np.maximum(b, start), np.minimum(b + interval, end)
    carried = has_prev & (prev_ts < bs)
    gap = np.where(has_prev, prev_v * (first_ts - np.where(carried, bs, prev_ts)), 0.0)
    new = np.ones(len(tag), dtype=bool)
    new[1:] = (tag[1:] != tag[:-1]) | (b[1:] != b[:-1])
    st = np.flatnonzero(new)
    en = np.append(st[1:], len(tag)) - 1
    raw = "n" not in src.schema.names  # raw samples only: n = 1 and integ = 0 for every row
    n = (en - st + 1) if raw else np.add.reduceat(col("n", np.int64), st)
    out: dict[str, np.ndarray] = {"tag_id": tag[st], "bucket": b[st]}
    for a in aggregates:
        if a == "min":
            out[a] = np.minimum.reduceat(col("vmin", np.float64), st)
        elif a == "max":
            out[a] = np.maximum.reduceat(col("vmax", np.float64), st)
        elif a == "mean":
            out[a] = np.add.reduceat(col("vsum", np.float64), st) / n
        elif a == "twa":
            integral = np.add.reduceat(gap if raw else col("integ", np.float64) + gap, st)
            integral += last_v[en] * (be[en] - last_ts[en])
            out[a] = integral / (be[en] - np.where(carried[st], bs[st], first_ts[st]))
        elif a == "first":
            out[a] = col("first_v", np.float64)[st]
        elif a == "last":
            out[a] = last_v[en]
        else:
            out[a] = n
    return pa.table(out)


def _order(result: pa.Table, tag_ids: Sequence[int], aggregates: Sequence[Aggregate]) -> pa.Table:
    """Rows in the order the tags were asked, then by bucket; typed columns."""
    pos = np.full(max(tag_ids) + 1, -1, dtype=np.int64)
    pos[np.asarray(tag_ids, dtype=np.int64)[::-1]] = np.arange(len(tag_ids))[::-1]
    rank = pos[result.column("tag_id").to_numpy()]
    buckets = result.column("bucket").to_numpy()
    if not _ascending(rank, buckets):  # raw folds come by tag id, then bucket: in order when ids were asked so
        result = result.take(pa.array(np.lexsort((buckets, rank))))
    out = {
        "tag_id": result.column("tag_id").cast(pa.uint32()),
        "bucket": result.column("bucket").cast(pa.int64()).cast(TS_TYPE),
    }
    for a in aggregates:
        col = result.column(a)
        out[a] = col.cast(pa.int64()) if a == "count" else col.cast(pa.float64())
    return pa.table(out)


def _ascending(rank: np.ndarray, buckets: np.ndarray) -> bool:
    if len(rank) < 2:
        return True
    dr = rank[1:] - rank[:-1]
    return bool(((dr > 0) | ((dr == 0) & (buckets[1:] > buckets[:-1]))).all())


def _empty(aggregates: Sequence[Aggregate]) -> pa.Table:
    cols: dict[str, pa.Array] = {"tag_id": pa.array([], pa.uint32()), "bucket": pa.array([], TS_TYPE)}
    for a in aggregates:
        cols[a] = pa.array([], pa.int64() if a == "count" else pa.float64())
    return pa.table(cols)
