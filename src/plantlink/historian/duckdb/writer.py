"""Flushing a sorted chunk: raw rows and rollups per day partition, in one transaction.

Rollups of a chunk are computed with numpy. A tag whose chunk starts at or before the newest sample already
stored for it arrived out of order: its rollups of the minutes from the chunk's first to its last sample of
that tag are deleted and recomputed from raw (the minutes after them got no sample: they stay).

A large chunk is written in pieces of at most ``PIECE_ROWS`` rows, cut where a (tag, minute) ends, and a
recompute reads one day at a time, sorted by numpy: neither numpy's temporaries nor DuckDB's inserts and reads
grow with the flush (a flush of out-of-order samples over 12 days fits DuckDB's 32MB). The pieces are still one
transaction: a flush is durable as a whole or not at all, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.historian.duckdb import blocks
from plantlink.historian.duckdb.buffer import Chunk
from plantlink.historian.duckdb.latest import NO_TS
from plantlink.historian.duckdb.layout import (
    DAY_US,
    MINUTE_US,
    R1M,
    R1M_NAMES,
    RAW,
    RAW_INSERT,
    create,
    r1m_bucket,
    raw_ts,
    table,
)
from plantlink.historian.duckdb.layout import raw as raw_rows
from plantlink.historian.duckdb.rollup import partials


def write_chunks(
    con: duckdb.DuckDBPyConnection,
    chunk: Chunk | None,
    text_chunk: Chunk | None,
    days: dict[str, set[int]],
    stored_max: np.ndarray,
    wal_seq: int | None = None,
    in_transaction: Callable[[duckdb.DuckDBPyConnection], object] | None = None,
) -> dict[str, set[int]]:
    """Insert everything (and the write-ahead-log position ``wal_seq`` it reaches, and whatever
    ``in_transaction`` does) in one transaction; return the day partitions it created."""
    new: dict[str, set[int]] = {RAW: set(), R1M: set()}
    con.execute("BEGIN TRANSACTION")
    try:
        if chunk is not None and len(chunk):
            for piece in pieces(chunk):
                _write_numeric(con, piece, days, stored_max, new)
                chunk.duplicates += piece.duplicates
        if text_chunk is not None and len(text_chunk):
            insert(con, "text_samples", text_chunk.table)
        if wal_seq is not None:
            con.execute("INSERT OR REPLACE INTO wal_position VALUES (1, ?)", [wal_seq])
        if in_transaction is not None:
            in_transaction(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return new


#: Rows of a chunk written at once (its numpy temporaries and DuckDB inserts are bounded by this, not the flush).
PIECE_ROWS = 100_000


def pieces(chunk: Chunk, rows: int = PIECE_ROWS) -> Iterator[Chunk]:
    """``chunk`` in consecutive slices of about ``rows`` rows (zero-copy), each cut where a (tag, minute) ends
    so that no minute's rollup is split (more than ``rows`` rows only when one (tag, minute) has more)."""
    n, lo = len(chunk), 0
    while lo < n:
        hi = min(lo + rows, n)
        if hi < n:  # on to the end of the (tag, minute) of row hi - 1 (rows sorted by tag, then time)
            tag, minute_end = chunk.tag[hi - 1], chunk.ts[hi - 1] - chunk.ts[hi - 1] % MINUTE_US + MINUTE_US
            tag_end = int(np.searchsorted(chunk.tag, tag, side="right"))
            hi += int(np.searchsorted(chunk.ts[hi:tag_end], minute_end, side="left"))
        yield Chunk(table=chunk.table.slice(lo, hi - lo), tag=chunk.tag[lo:hi], ts=chunk.ts[lo:hi],
                    value=chunk.value[lo:hi], quality=chunk.quality[lo:hi])
        lo = hi


def insert(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table, columns: str = "") -> None:
    con.register("_ins", data)
    try:
        con.execute(f"INSERT INTO {name} {f'({columns})' if columns else ''} SELECT * FROM _ins")
    finally:
        con.unregister("_ins")


def by_day(data: pa.Table, ts: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """Split rows by UTC day of ``ts``, keeping their order."""
    if len(ts) == 0:
        return
    day = ts // DAY_US
    lo, hi = int(day.min()), int(day.max())
    if lo == hi:
        yield lo, data
        return
    for d in np.unique(day).tolist():
        yield int(d), data.filter(pa.array(day == d))


def _put(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    d: int,
    data: pa.Table,
    days: dict[str, set[int]],
    new: dict[str, set[int]],
) -> None:
    if d not in days[kind] and d not in new[kind]:
        create(con, kind, d)
        new[kind].add(d)
    insert(con, table(kind, d), data, RAW_INSERT if kind == RAW else ", ".join(R1M_NAMES))


def _write_numeric(
    con: duckdb.DuckDBPyConnection,
    chunk: Chunk,
    days: dict[str, set[int]],
    stored_max: np.ndarray,
    new: dict[str, set[int]],
) -> None:
    first = np.ones(len(chunk), dtype=bool)
    first[1:] = chunk.tag[1:] != chunk.tag[:-1]
    tags, first_ts = chunk.tag[first].astype(np.int64), chunk.ts[first]
    last_ts = chunk.ts[np.append(np.flatnonzero(first)[1:] - 1, len(chunk) - 1)]
    prev = np.full(len(tags), NO_TS, dtype=np.int64)
    inside = tags < len(stored_max)
    prev[inside] = stored_max[tags[inside]]
    dirty = first_ts <= prev
    late = np.isin(chunk.tag, tags[dirty]) if dirty.any() else None
    if late is not None:  # samples at or before a tag's newest stored one may repeat a stored (tag, time)
        chunk.duplicates += _replace(con, chunk, late, days)
    for d, part in by_day(chunk.table, chunk.ts):
        _put(con, RAW, d, part, days, new)
    rows = ~late if late is not None else slice(None)
    rolled = partials(chunk.tag[rows], chunk.ts[rows], chunk.value[rows], chunk.quality[rows])
    _put_rollups(con, rolled, days, new)
    if dirty.any():
        upto = last_ts[dirty] - last_ts[dirty] % MINUTE_US + MINUTE_US
        _recompute(con, tags[dirty], first_ts[dirty] - first_ts[dirty] % MINUTE_US, upto, days, new)


def _replace(con: duckdb.DuckDBPyConnection, chunk: Chunk, late: np.ndarray, days: dict[str, set[int]]) -> int:
    """Delete the stored raw rows of the (tag, time) pairs the ``late`` rows of ``chunk`` write again (the last
    written wins; the rollups of those tags are recomputed from raw after the insert); return how many."""
    tag, ts = chunk.tag[late], chunk.ts[late]
    gone = 0
    for d in np.unique(ts // DAY_US).tolist():
        if int(d) not in days[RAW]:
            continue
        on_day = (ts // DAY_US) == d
        con.register("_again", pa.table({"tag_id": pa.array(tag[on_day], pa.uint32()), "ts": ts[on_day]}))
        try:
            name = table(RAW, int(d))
            blocks.unblock(con, int(d), "_again")
            row = con.execute(f"DELETE FROM {name} USING _again WHERE {name}.tag_id = _again.tag_id "
                              f"AND {raw_ts(int(d), name)} = _again.ts").fetchone()
            gone += int(row[0]) if row else 0
        finally:
            con.unregister("_again")
    return gone


def _put_rollups(
    con: duckdb.DuckDBPyConnection, rolled: pa.Table, days: dict[str, set[int]], new: dict[str, set[int]]
) -> None:
    for d, part in by_day(rolled, rolled.column("bucket").to_numpy()):
        if d in days[R1M]:  # a compacted day's sparse tags have their minutes read from raw (``layout.r1m``)
            marked = con.execute(f"SELECT tag_id FROM {table(R1M, d)} WHERE n = 0").fetchall()
            if marked:
                part = part.filter(pc.invert(pc.is_in(part.column("tag_id"),
                                                      pa.array([t for (t,) in marked], pa.uint32()))))
        _put(con, R1M, d, part, days, new)


def _recompute(
    con: duckdb.DuckDBPyConnection,
    tags: np.ndarray,
    from_ts: np.ndarray,
    upto_ts: np.ndarray,
    days: dict[str, set[int]],
    new: dict[str, set[int]],
) -> None:
    """Rebuild the rollups of ``tags`` in minutes ``[from_ts, upto_ts)`` (where the chunk's rows of each tag
    landed: other minutes got no row), out of the raw rows (now all inserted), one day at a time: a minute
    never spans two days, and a day's rows are read unordered and sorted by numpy (DuckDB's sort of many days'
    rows ran out of its memory limit), in groups of tags of about ``PIECE_ROWS`` rows."""
    lo, hi = int(from_ts.min()) // DAY_US, int(upto_ts.max() - 1) // DAY_US
    con.register("_dirty", pa.table({"tag_id": pa.array(tags, pa.uint32()), "from_ts": from_ts, "upto": upto_ts}))
    try:
        for d in sorted(x for x in days[R1M] | new[R1M] if lo <= x <= hi):
            name = table(R1M, d)
            con.execute(
                f"DELETE FROM {name} USING _dirty WHERE {name}.tag_id = _dirty.tag_id "
                f"AND {r1m_bucket(d, name)} >= _dirty.from_ts AND {r1m_bucket(d, name)} < _dirty.upto"
            )
        for d in sorted(x for x in days[RAW] | new[RAW] if lo <= x <= hi):
            for first, last in _tag_ranges(con, d):
                _put_rollups(con, _rolled(con, d, first, last), days, new)
    finally:
        con.unregister("_dirty")


def _dirty_rows(d: int) -> str:
    return (f"FROM {raw_rows(d)} r JOIN _dirty USING (tag_id) "
            "WHERE r.ts >= _dirty.from_ts AND r.ts < _dirty.upto")


def _tag_ranges(con: duckdb.DuckDBPyConnection, d: int) -> list[tuple[int, int]]:
    """Consecutive ranges of the ``_dirty`` tags holding about ``PIECE_ROWS`` rows each on day ``d``."""
    query = f"SELECT r.tag_id, count(*) AS n {_dirty_rows(d)} GROUP BY r.tag_id ORDER BY r.tag_id"
    counts = con.sql(query).fetchnumpy()
    tag, n = np.asarray(counts["tag_id"], dtype=np.int64), np.asarray(counts["n"], dtype=np.int64)
    if len(tag) == 0:
        return []
    group = (np.cumsum(n) - n) // PIECE_ROWS  # a tag goes with those before it while they hold fewer rows
    cut = np.flatnonzero(np.diff(group)) + 1
    return [(int(g[0]), int(g[-1])) for g in np.split(tag, cut)]


def _rolled(con: duckdb.DuckDBPyConnection, d: int, first: int, last: int) -> pa.Table:
    """The 1-minute partials of day ``d``'s raw rows of the ``_dirty`` tags ``first``..``last`` in their ranges."""
    raw = con.sql(f"SELECT r.tag_id, r.ts, r.value, r.quality {_dirty_rows(d)} "
                  f"AND r.tag_id BETWEEN {first} AND {last}").fetchnumpy()
    tag, ts = np.asarray(raw["tag_id"], dtype=np.uint32), np.asarray(raw["ts"], dtype=np.int64)
    value = np.asarray(raw["value"], dtype=np.float64)  # masked (null) values become NaN
    if np.ma.isMaskedArray(raw["value"]):
        value = np.ma.filled(raw["value"].astype(np.float64), np.nan)
    quality = np.asarray(raw["quality"], dtype=np.uint8)
    del raw
    order = np.lexsort((ts, tag))
    return partials(tag[order], ts[order], value[order], quality[order])
