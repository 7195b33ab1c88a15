"""The latest values and the newest stored timestamps, kept in the store so that an open reads them at once.

``latest`` holds each tag's last ARRIVED sample (``latest.LatestCache``); ``stored_max`` the greatest
timestamp stored per numeric tag (what out-of-order detection compares a flush with). A flush upserts the
rows of the tags it changed in its own transaction, together with the samples and the write-ahead-log
position, so the tables always describe exactly what is durable: after a crash the log replays the batches
beyond that position in their arrival order through ``write``, which brings the cache up to date again.

A store written before these tables existed gets them from one scan at its first open (``rebuild_latest``,
where the latest is the sample with the greatest timestamp: that store kept no arrival order).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.historian.duckdb.buffer import Chunk
from plantlink.historian.duckdb.latest import NO_TS, LatestCache

LATEST_DDL = """
CREATE TABLE IF NOT EXISTS latest (tag_id UINTEGER PRIMARY KEY, ts BIGINT NOT NULL, value DOUBLE,
    quality UTINYINT NOT NULL, text VARCHAR)
"""
STORED_MAX_DDL = "CREATE TABLE IF NOT EXISTS stored_max (tag_id UINTEGER PRIMARY KEY, ts BIGINT NOT NULL)"


def exists(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store keeps its latest values (both tables there)."""
    names = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND table_name IN ('latest', 'stored_max')").fetchall()}
    return names == {"latest", "stored_max"}


def create(con: duckdb.DuckDBPyConnection) -> bool:
    """Create the tables when missing; True when they were there already (nothing to rebuild)."""
    there = exists(con)
    con.execute(LATEST_DDL)
    con.execute(STORED_MAX_DDL)
    return there


def load(con: duckdb.DuckDBPyConnection, latest: LatestCache) -> np.ndarray:
    """Fill ``latest`` from the store (one read each table); return the newest stored timestamp per tag id."""
    latest.load(con.sql("SELECT tag_id, ts, value, quality, text FROM latest").to_arrow_table())
    t = con.sql("SELECT tag_id, ts FROM stored_max").fetchnumpy()
    tag, ts = np.asarray(t["tag_id"], dtype=np.int64), np.asarray(t["ts"], dtype=np.int64)
    stored_max = np.full(int(tag.max()) + 1 if len(tag) else 0, NO_TS, dtype=np.int64)
    stored_max[tag] = ts
    return stored_max


def save(con: duckdb.DuckDBPyConnection, rows: pa.Table | None, maxima: pa.Table | None) -> None:
    """Upsert changed latest ``rows`` (``LatestCache.rows``) and ``maxima`` (``tag_id``, ``ts``), inside the
    caller's transaction."""
    for name, data in (("latest", rows), ("stored_max", maxima)):
        if data is None or data.num_rows == 0:
            continue
        con.register("_upsert", data)
        try:
            con.execute(f"INSERT OR REPLACE INTO {name} SELECT * FROM _upsert")
        finally:
            con.unregister("_upsert")


def save_all(con: duckdb.DuckDBPyConnection, latest: LatestCache, stored_max: np.ndarray) -> None:
    """Write the whole cache and maxima (after a rebuild from a scan), in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        save(con, latest.rows(np.flatnonzero(latest.ts != NO_TS)), maxima(stored_max))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def maxima(stored_max: np.ndarray, tags: np.ndarray | None = None) -> pa.Table:
    """``tag_id``, ``ts`` rows of ``stored_max`` for ``tags`` (default: every tag with a stored sample)."""
    ids = np.flatnonzero(stored_max != NO_TS) if tags is None else np.asarray(tags, dtype=np.int64)
    return pa.table({"tag_id": pa.array(ids, pa.uint32()), "ts": pa.array(stored_max[ids], pa.int64())})


def forget_before(con: duckdb.DuckDBPyConnection, cutoff_us: int) -> None:
    """Retention: latest values older than the raw cutoff are forgotten (``LatestCache.forget_before``)."""
    con.execute("DELETE FROM latest WHERE ts < ?", [cutoff_us])


def update_max(stored_max: np.ndarray, chunk: Chunk) -> np.ndarray:
    """A copy of ``stored_max`` raised to the newest timestamps of ``chunk`` (sorted by tag, ts)."""
    tag, ts = chunk.tag, chunk.ts
    if len(tag) == 0:
        return stored_max
    top = int(tag.max())
    stored_max = np.concatenate([stored_max, np.full(max(0, top + 1 - len(stored_max)), NO_TS, dtype=np.int64)])
    last = np.ones(len(tag), dtype=bool)  # a group's last row is its max
    last[:-1] = tag[1:] != tag[:-1]
    t = tag[last]
    stored_max[t] = np.maximum(stored_max[t], ts[last])
    return stored_max
