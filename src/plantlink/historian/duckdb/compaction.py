"""Compaction of closed days: each day table rewritten once in (tag_id, ts) order, partial rollups merged.

A running store appends one sorted chunk per flush, so a day's raw table is many short runs of each tag:
DuckDB's bit-packing of ``ts`` then sees jumps back in time every few thousand rows and stores ~4 bytes per
timestamp, and every run is a row group of its own. Rewritten in (tag_id, ts) order, a tag's day is one run:
``ts`` becomes a constant or small delta (bit-packing in DELTA_FOR / CONSTANT_DELTA mode), ``tag_id`` and
``quality`` one RLE run per row group, ``value`` ALP-compressed neighbours of one series.

The 1-minute rollup table of a day holds one *partial* row per flush that cut a minute; compaction folds
them into one row per (tag, minute) (``hourly.fold``, the same fold the hours use), so the answers do not
change.

A table is compacted once its day ended ``CLOSE_AFTER_US`` ago, in one transaction (``CREATE`` the new
table, ``INSERT ... ORDER BY``, ``DROP`` the old, ``RENAME``, record the row count in ``compacted``): a crash
leaves either the old table or the new one. ``compacted`` holds the row count of each table after its
compaction; a table whose count differs (late data appended rows) is compacted again, one whose count is
the same is left alone (idempotent).
"""

from __future__ import annotations

import contextlib

import duckdb

from plantlink.historian.duckdb.hourly import fold
from plantlink.historian.duckdb.layout import (
    DAY_US,
    MINUTE_US,
    R1M,
    R1M_COLUMNS,
    R1M_NAMES,
    RAW,
    RAW_COLUMNS,
    table,
)
from plantlink.historian.duckdb.queries import Snapshot

#: A day is compacted once it ended this long ago (late samples of it make it due again).
CLOSE_AFTER_US = 15 * MINUTE_US
COMPACTED_DDL = "CREATE TABLE IF NOT EXISTS compacted (name VARCHAR PRIMARY KEY, rows UBIGINT NOT NULL)"


def create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(COMPACTED_DDL)


def _count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchall()  # fetch all: leave no result pending
    return int(rows[0][0])


def due(con: duckdb.DuckDBPyConnection, snap: Snapshot, now_us: int) -> list[tuple[str, int]]:
    """(kind, day) of the closed day tables whose row count is not the one their last compaction left."""
    done = dict(con.execute("SELECT name, rows FROM compacted").fetchall())
    out = []
    for kind, days in ((RAW, snap.raw), (R1M, snap.r1m)):
        for d in sorted(days):
            if (d + 1) * DAY_US + CLOSE_AFTER_US > now_us:
                continue
            name = table(kind, d)
            if done.get(name) != _count(con, name):
                out.append((kind, d))
    return out


def _rewrite_sql(kind: str, name: str, into: str) -> str:
    if kind == RAW:
        return f"INSERT INTO {into} SELECT tag_id, ts, value, quality FROM {name} ORDER BY tag_id, ts"
    merged = fold(f"SELECT * FROM {name}", MINUTE_US)
    return f"INSERT INTO {into} ({', '.join(R1M_NAMES)}) SELECT * FROM ({merged}) ORDER BY tag_id, h"


def compact(con: duckdb.DuckDBPyConnection, kind: str, day: int) -> int:
    """Rewrite one day table sorted (raw) or merged per minute (r1m), swapped in one transaction; returns its
    row count afterwards."""
    name = table(kind, day)
    tmp = f"{name}_compacting"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {tmp}")
        con.execute(f"CREATE TABLE {tmp} ({RAW_COLUMNS if kind == RAW else R1M_COLUMNS})")
        con.execute(_rewrite_sql(kind, name, tmp))
        con.execute(f"DROP TABLE {name}")
        con.execute(f"ALTER TABLE {tmp} RENAME TO {name}")
        rows = _count(con, name)
        con.execute("INSERT OR REPLACE INTO compacted VALUES (?, ?)", [name, rows])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return rows


def forget_dropped(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the tables that retention dropped."""
    con.execute("DELETE FROM compacted WHERE name NOT IN (SELECT table_name FROM duckdb_tables())")


def checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Write the compacted tables out and free the old blocks (skipped while other transactions run)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("CHECKPOINT")
