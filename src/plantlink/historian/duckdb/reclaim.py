"""Giving the blocks that compaction freed back to the file system.

DuckDB keeps a freed block in the file for later writes and shrinks the file at a checkpoint only by the free
blocks at its *end*. Compaction writes each day's copy before the old table is dropped, so the copies land at
the end of the file and the freed blocks sit below them: the file stays as big as before compaction (a
reference run of ``bench/historian.py``: 11.6 bytes per sample in the file, 5.0 in use).

Compaction checkpoints after each swap, so the next day's copy fills the blocks the previous one freed. And
DuckDB allocates new blocks from the lowest free one: so, after a pass that compacted something, when more
than ``FREE_FRACTION`` of the file's length is free, the table holding the file's highest block is *moved*:
copied in its row order into a table of the same definition (constraints included), which fills the free
blocks below, then swapped for the original in one transaction; the checkpoint after cuts the file at its
last block in use. Then the next table (``run``). Each table moves under the store's write lock on its own
(flushes wait for one table, not for the pass). A raw or 1-minute day table that compaction has not rewritten
in its current state (the open day, a day with late rows) moves only while it is small (``OPEN_ROWS``); a
larger one holding the tail stops the pass there (the file shrinks only down to it; its own appends fill the
free blocks below meanwhile, and the next pass after its compaction goes further).

The copy keeps every row, in the same order, with the same values: reads do not change. A copy a crash left
behind (``<table>_moving``) is dropped at open.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable

import duckdb

from plantlink.historian.duckdb.layout import swap_in, table_kind

#: Tables are moved when more than this fraction of the file's blocks is free after a checkpoint.
FREE_FRACTION = 0.2
#: ... and until at most this fraction is free.
DONE_FRACTION = 0.05
#: Rows copied per statement (each committed on its own into the copy: the engine keeps the rows of an open
#: transaction in memory).
CHUNK_ROWS = 1_000_000
#: A day table still written to (the open day: it is written at the end of the file) moves only up to this
#: many rows: its copy holds the write lock, flushes wait meanwhile (about a second per million rows).
OPEN_ROWS = 4_000_000
_SUFFIX = "_moving"


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the copies a crash left behind."""
    for (name,) in con.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%{_SUFFIX}'").fetchall():
        con.execute(f"DROP TABLE {name}")


def blocks(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(total, free) blocks of the file: its length in blocks, and those not in use as of the last checkpoint
    (DuckDB's own total can count free blocks beyond the end of the file, cut at an earlier checkpoint)."""
    row = con.execute("SELECT total_blocks, free_blocks, block_size, path FROM pragma_database_size() "
                      "JOIN duckdb_databases() USING (database_name) "
                      "WHERE database_name = current_database()").fetchone()
    if row is None:
        return 0, 0
    total, free, size, path = int(row[0]), int(row[1]), int(row[2]), row[3]
    if path and os.path.isfile(path):
        length = os.path.getsize(path) // size
        return length, max(0, length - (total - free))
    return total, free


def worth_it(con: duckdb.DuckDBPyConnection, fraction: float) -> bool:
    """More than ``fraction`` of the file's blocks are free."""
    total, free = blocks(con)
    return total > 0 and free > fraction * total


def _next(con: duckdb.DuckDBPyConnection, moved: set[str]) -> str | None:
    """The table to move next: of those not moved yet in this pass (a second move would not help: its copy
    went where the free blocks were), the one holding the highest block beyond the blocks in use, else a
    catalog holder (the catalog's blocks then hold the tail)."""
    return next((n for n in tail(con) + catalog_holders(con) if n not in moved), None)


def _count_tables(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()").fetchone()
    return int(row[0]) if row else 0


def tail(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables holding a block beyond the blocks in use, the highest first."""
    total, free = blocks(con)
    used = total - free
    out = []
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                               "AND database_name = current_database()").fetchall():
        row = con.execute(f"SELECT max(block_id) FROM pragma_storage_info('{name}') WHERE persistent"
                          ).fetchone()
        top = row[0] if row else None
        if top is not None and int(top) >= used:
            out.append((int(top), name))
    return [name for _top, name in sorted(out, reverse=True)]


def movable(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Not a raw or 1-minute day table whose current state compaction has not written (open, or late rows),
    unless it holds at most ``OPEN_ROWS`` rows."""
    if table_kind(name) is None:
        return True
    rows = _count(con, name)
    done = con.execute("SELECT rows FROM compacted WHERE name = ?", [name]).fetchone()
    return rows <= OPEN_ROWS or (done is not None and int(done[0]) == rows)


def _count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchall()
    return int(rows[0][0])


def move(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Copy table ``name`` (definition, then rows in their order, ``CHUNK_ROWS`` at a time) and put the copy
    in its place, in one transaction; the caller holds the write lock."""
    tmp = name + _SUFFIX
    row = con.execute("SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ? "
                      "AND database_name = current_database()", [name]).fetchone()
    if row is None:
        return
    ddl, n = re.subn(rf'^CREATE TABLE "?{re.escape(name)}"?', f"CREATE TABLE {tmp}", str(row[0]))
    if n != 1:
        raise ValueError(f"unexpected definition of {name}: {row[0]}")
    con.execute(f"DROP TABLE IF EXISTS {tmp}")
    con.execute(ddl)
    try:
        top = con.execute(f"SELECT max(rowid) FROM {name}").fetchone()
        last = int(top[0]) if top and top[0] is not None else -1
        for lo in range(0, last + 1, CHUNK_ROWS):
            con.execute(f"INSERT INTO {tmp} SELECT * FROM {name} WHERE rowid BETWEEN {lo} AND {lo + CHUNK_ROWS - 1}")
        swap_in(con, tmp, name)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP TABLE IF EXISTS {tmp}")
        raise


def checkpoint(con: duckdb.DuckDBPyConnection) -> bool:
    """A checkpoint (skipped while other transactions run); whether it ran."""
    try:
        con.execute("CHECKPOINT")
    except duckdb.Error:
        return False
    return True


def catalog_holders(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables whose blocks ``tail`` does not see: their index (a PRIMARY KEY or UNIQUE constraint) or, when
    they hold no rows, their whole state is kept in the catalog's (metadata) blocks, which a checkpoint keeps
    where they are while the table does not change. They hold few rows (tags, latest values, bookkeeping)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() t WHERE database_name = current_database() "
        "AND schema_name = 'main' AND (estimated_size = 0 OR EXISTS (SELECT 1 FROM duckdb_constraints() c "
        "WHERE c.table_oid = t.table_oid AND c.constraint_type IN ('PRIMARY KEY', 'UNIQUE'))) "
        "ORDER BY table_name").fetchall()
    return [name for (name,) in rows]


def run(con_of: Callable[[], duckdb.DuckDBPyConnection], write_lock: threading.RLock) -> int:
    """Once more than ``FREE_FRACTION`` of the file is free, move the table that holds the file's highest block,
    checkpoint (the file is cut at its last block in use; the moved table's old blocks are free for the next
    move), and again, until at most ``DONE_FRACTION`` is free, a table that cannot move holds the tail, or as
    many moves as there are tables were made. When no table's data holds the tail, the catalog's blocks do:
    the tables kept there (``catalog_holders``) move, once each. Each move holds the write lock on its own.
    Returns how many moves were made."""
    with write_lock:
        con = con_of()
        if not checkpoint(con) or not worth_it(con, FREE_FRACTION):
            return 0
        budget = _count_tables(con)
    moved: set[str] = set()
    moves = 0
    while moves < budget:
        with write_lock:
            con = con_of()
            if not worth_it(con, DONE_FRACTION):
                break
            name = _next(con, moved)
            if name is None or not movable(con, name):
                break
            move(con, name)
            moved.add(name)
            moves += 1
            if not checkpoint(con):
                break  # readers hold a transaction: the old blocks stay in use; the next pass goes on
    return moves
