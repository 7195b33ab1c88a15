"""Flushing a sorted chunk: raw rows and rollups per day partition, in one transaction.

Rollups of a chunk are computed with numpy. A tag whose chunk starts at or before the newest sample already
stored for it arrived out of order: its rollups of the minutes from the chunk's first to its last sample of
that tag are deleted and recomputed from raw (the minutes after them got no sample: they stay).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
            _write_numeric(con, chunk, days, stored_max, new)
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
    landed: other minutes got no row), out of the raw rows (now all inserted)."""
    lo, hi = int(from_ts.min()) // DAY_US, int(upto_ts.max() - 1) // DAY_US
    con.register("_dirty", pa.table({"tag_id": pa.array(tags, pa.uint32()), "from_ts": from_ts, "upto": upto_ts}))
    try:
        for d in sorted(x for x in days[R1M] | new[R1M] if lo <= x <= hi):
            name = table(R1M, d)
            con.execute(
                f"DELETE FROM {name} USING _dirty WHERE {name}.tag_id = _dirty.tag_id "
                f"AND {r1m_bucket(d, name)} >= _dirty.from_ts AND {r1m_bucket(d, name)} < _dirty.upto"
            )
        selects = [
            f"SELECT r.tag_id, r.ts, r.value, r.quality FROM {raw_rows(d)} r JOIN _dirty USING (tag_id) "
            "WHERE r.ts >= _dirty.from_ts AND r.ts < _dirty.upto"
            for d in sorted(x for x in days[RAW] | new[RAW] if lo <= x <= hi)
        ]
        raw = con.sql(" UNION ALL ".join(selects) + " ORDER BY tag_id, ts").fetchnumpy()
    finally:
        con.unregister("_dirty")
    value = np.asarray(raw["value"], dtype=np.float64)  # masked (null) values become NaN
    if np.ma.isMaskedArray(raw["value"]):
        value = np.ma.filled(raw["value"].astype(np.float64), np.nan)
    rolled = partials(
        np.asarray(raw["tag_id"], dtype=np.uint32),
        np.asarray(raw["ts"], dtype=np.int64),
        value,
        np.asarray(raw["quality"], dtype=np.uint8),
    )
    _put_rollups(con, rolled, days, new)
