"""Compaction of closed days: each day table rewritten once in (tag_id, ts) order, partial rollups merged.

A running store appends one sorted chunk per flush, so a day's raw table is many short runs of each tag:
DuckDB's bit-packing of ``ts`` then sees jumps back in time every few thousand rows and stores ~4 bytes per
timestamp, and every run is a row group of its own. Rewritten in (tag_id, ts) order, a tag's day is one run:
``ts`` becomes a constant or small delta (bit-packing in DELTA_FOR / CONSTANT_DELTA mode), ``tag_id`` and
``quality`` one RLE run per row group, ``value`` ALP-compressed neighbours of one series.

The 1-minute rollup table of a day holds one *partial* row per flush that cut a minute; compaction folds
them into one row per (tag, minute) (``hourly.fold``, the same fold the hours use), so the answers do not
change.

A table is compacted once its day ended ``CLOSE_AFTER_US`` ago: the rewritten copy is made in a table of its
own without the store's write lock (flushes go on: a day of 1,000 tags at 1 Hz takes ~15 s), then, under
the lock and only if no flush wrote into that day meanwhile (``Touched``), one transaction drops the old
table, renames the copy and records its row count in ``compacted``: a crash leaves either the old table or
the new one (a leftover copy is dropped at open). ``compacted`` holds the row count of each table after its
compaction; a table whose count differs (late data appended rows) is compacted again, one whose count is
the same is left alone (idempotent).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.historian.duckdb import blocks, reclaim
from plantlink.historian.duckdb.hourly import fold
from plantlink.historian.duckdb.layout import (
    BLOCK_COLUMNS,
    BLOCK_DDL,
    DAY_US,
    MINUTE_US,
    R1M,
    R1M_COMPACTED_COLUMNS,
    R1M_NAMES,
    RAW,
    RAW_COLUMNS,
    blocks_table,
    in_transaction,
    r1m,
    raw,
    raw_good,
    raw_minutes,
    swap_in,
    table,
)
from plantlink.historian.duckdb.queries import Snapshot

#: A day is compacted once it ended this long ago (late samples of it make it due again).
CLOSE_AFTER_US = 15 * MINUTE_US
COMPACTED_DDL = "CREATE TABLE IF NOT EXISTS compacted (name VARCHAR PRIMARY KEY, rows UBIGINT NOT NULL)"

log = logging.getLogger("plantlink.historian")


class Touched:
    """How many flushes (or retention passes) wrote into each day or an earlier one: a late sample's flush
    can rewrite the minutes of the days after it. A copy made while a day's count stayed the same is
    current. Also the days whose minute table may hold markers (``marked``: a sparse tag's minutes in raw):
    only their minute reads add the raw branch (about 30 ms more for a day of 100 tags at 1 Hz at 5 min);
    a day is added before its markers are swapped in and never removed (a day without markers read with
    the branch costs time, never an answer)."""

    def __init__(self) -> None:
        self._n: dict[int, int] = {}
        self._marked: set[int] = set()
        self._lock = threading.Lock()

    def mark(self, days: set[int]) -> None:
        with self._lock:
            self._marked |= days

    def marked(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._marked)

    def note(self, from_day: int) -> None:
        with self._lock:
            self._n[from_day] = self._n.get(from_day, 0) + 1

    def note_all(self) -> None:
        self.note(-(2**62))

    def get(self, day: int) -> int:
        with self._lock:
            return sum(n for d, n in self._n.items() if d <= day)


def create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(COMPACTED_DDL)
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%_compacting'"
                               ).fetchall():
        con.execute(f"DROP TABLE {name}")  # a copy a crash left behind


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


#: At most about this many raw rows are rewritten by one statement: a day is copied in groups of whole tags, in
#: tag order (so the copy is sorted), which keeps each statement within the engine's memory limit (32MB by
#: default: a day of 1,000 tags at 1 Hz in one statement ran out of 64MB). Minute rows, wider and folded with
#: window functions, go an eighth as many at a time; a group that still runs out is split (``_copy``).
CHUNK_ROWS = 1_000_000


def tag_groups(cur: duckdb.DuckDBPyConnection, name: str, limit: int | None = None, weight: str = "count(*)"
               ) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` tag-id ranges of table ``name`` (or a FROM item) holding about ``limit`` rows
    each (default ``CHUNK_ROWS``; a tag with more rows is a group of its own)."""
    limit = limit or CHUNK_ROWS
    groups: list[tuple[int, int]] = []
    lo = prev = -1
    n = 0
    for tag, count in cur.execute(f"SELECT tag_id, {weight} FROM {name} GROUP BY tag_id ORDER BY tag_id").fetchall():
        if n and n + count > limit:
            groups.append((lo, prev))
            n = 0
        if n == 0:
            lo = tag
        n += count
        prev = tag
    if n:
        groups.append((lo, prev))
    return groups


def _rewrite(cur: duckdb.DuckDBPyConnection, kind: str, day: int, into: str, lo: int, hi: int, with_raw: bool,
             sparse: int) -> None:
    tags = f"tag_id BETWEEN {lo} AND {hi}"
    if kind == RAW:
        _encode(cur, day, into, tags)
        return
    cur.execute(_minutes_sql(day, into, fold(f"SELECT * FROM {r1m(day, with_raw)} WHERE {tags}", MINUTE_US),
                             tags if with_raw and sparse else None, sparse))


def _encode(cur: duckdb.DuckDBPyConnection, day: int, into: str, tags: str) -> None:
    """Write the samples of the tags ``tags`` (a WHERE fragment) of raw day ``day`` into ``into`` as a block per
    tag (``blocks``), in tag order; sorted by numpy (DuckDB's sort of a group ran out of the memory limit)."""
    got = cur.sql(f"SELECT tag_id, ts, value, quality FROM {raw(day)} WHERE {tags}").to_arrow_table()
    if not got.num_rows:
        return
    tag, ts = got.column(0).to_numpy(), got.column(1).to_numpy()
    order = np.lexsort((ts, tag))
    value = got.column(2).to_numpy(zero_copy_only=False)[order]
    rows = blocks.encode_sorted(tag[order], ts[order], value, got.column(3).to_numpy()[order])
    del got, tag, ts, value
    for part in _by_bytes(rows):
        cur.register("_blocks", part)
        try:
            cur.execute(f"INSERT INTO {into} ({BLOCK_COLUMNS}) SELECT {BLOCK_COLUMNS} FROM _blocks")
        finally:
            cur.unregister("_blocks")


#: The most bytes of blocks one INSERT writes: DuckDB holds a statement's blobs in its buffer pool until the
#: commit (100 tags' day at 1 Hz, about 15 MB, did not fit a 16MB limit).
INSERT_BYTES = 2_000_000


def _by_bytes(rows: pa.Table) -> list[pa.Table]:
    sizes = np.cumsum([len(a) + len(b) + len(c) for a, b, c in zip(
        rows.column("tb").to_pylist(), rows.column("vb").to_pylist(), rows.column("qb").to_pylist(), strict=True)])
    cuts = np.searchsorted(sizes, np.arange(INSERT_BYTES, int(sizes[-1]) + INSERT_BYTES, INSERT_BYTES), "right")
    starts = [0, *sorted({int(c) for c in cuts if 0 < c < rows.num_rows})]
    return [rows.slice(s, e - s) for s, e in zip(starts, [*starts[1:], rows.num_rows], strict=True)]


def _minutes_sql(day: int, into: str, merged: str, sparse_of: str | None, sparse: int = 0) -> str:
    """INSERT into ``into`` the minute rows ``merged`` (a fold) with their times as offsets, in (tag, minute)
    order. ``sparse_of`` (a WHERE fragment on the tags, or None: keep every tag's minutes): the tags among
    them averaging fewer than ``sparse`` (``settings.sparse_minutes``) samples per minute, all of whose
    samples the raw day still holds (its good rows count the same), get one marker row instead of their
    minutes (``layout.r1m``)."""
    start = day * DAY_US
    rows = (f"SELECT tag_id, NULL::BIGINT, n, vmin, vmax, vsum, NULL::BIGINT, first_v, NULL::BIGINT, last_v, integ, "
            f"((b - {start}) // {MINUTE_US})::USMALLINT AS mo, (f - b)::UINTEGER, (l - b)::UINTEGER FROM m")
    head = f"INSERT INTO {into} ({', '.join(R1M_NAMES)}, mo, fo, lo) SELECT * FROM (WITH m AS MATERIALIZED " \
           f"(SELECT * FROM ({merged}) AS m(tag_id, b, n, vmin, vmax, vsum, f, first_v, l, last_v, integ))"
    if sparse_of is None:
        return f"{head} {rows}) ORDER BY tag_id, mo"
    few = f"SELECT tag_id, sum(n) AS k FROM m GROUP BY tag_id HAVING sum(n) < {sparse} * count(*)"
    held = (f"SELECT tag_id, count(*) AS k FROM {raw_good(day)} WHERE {sparse_of} "
            "AND tag_id IN (SELECT tag_id FROM c) GROUP BY tag_id")
    return (f"{head}, c AS MATERIALIZED ({few}), sp AS MATERIALIZED (SELECT c.tag_id FROM c JOIN ({held}) AS r "
            f"ON r.tag_id = c.tag_id AND r.k = c.k) {rows} WHERE tag_id NOT IN (SELECT tag_id FROM sp) UNION ALL "
            "SELECT tag_id, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM sp) "
            "ORDER BY tag_id, mo NULLS FIRST")


def keep_minutes(con: duckdb.DuckDBPyConnection, day: int) -> int:
    """Before raw retention deletes samples of ``day``: store the minutes of the tags whose minutes are read
    from raw (``settings.sparse_minutes``) and drop their markers, a group of tags per transaction (each
    consistent: a marker or the minutes). Returns how many tags."""
    t = table(R1M, day)
    marked = [int(x) for (x,) in con.execute(f"SELECT tag_id FROM {t} WHERE n = 0 ORDER BY tag_id").fetchall()]
    step = max(1, CHUNK_ROWS // 8 // 1440)
    for i in range(0, len(marked), step):
        ids = f"({', '.join(map(str, marked[i:i + step]))})"
        some = f"SELECT unnest([{', '.join(map(str, marked[i:i + step]))}])::UINTEGER AS tag_id"
        in_transaction(con, _minutes_sql(day, t, fold(raw_minutes(day, some), MINUTE_US), None),
                       f"DELETE FROM {t} WHERE n = 0 AND tag_id IN {ids}")
    return len(marked)


def _source(kind: str, day: int) -> str:
    """What a compaction of ``kind``'s day rewrites, as a FROM item with ``tag_id`` and ``k``, the rows each row
    stands for (a raw day: its rows, 1 each, and its blocks, ``n`` each)."""
    if kind != RAW:
        return f"(SELECT tag_id, 1 AS k FROM {table(kind, day)})"
    return f"(SELECT tag_id, 1 AS k FROM {table(RAW, day)} UNION ALL SELECT tag_id, n AS k FROM {blocks_table(day)})"


def _tmp(kind: str, day: int) -> str:
    return f"{table(kind, day)}_compacting"


def prepare(cur: duckdb.DuckDBPyConnection, kind: str, day: int, with_raw: bool = True, sparse: int = 0) -> None:
    """Write the rewritten copy of one day table (sorted for raw, merged per minute for r1m) into a table of
    its own on ``cur``, a group of tags at a time (``CHUNK_ROWS``), each group committed on its own: one
    transaction for the whole day would keep every copied row in memory until its commit. No lock is held,
    flushes go on meanwhile (``run`` drops the copy when one wrote into the day); a copy left by a crash is
    dropped at the next open (``create``). ``with_raw``: the day's raw table exists and is read for the
    markers' minutes; ``sparse`` (``settings.sparse_minutes``, 0: off): with raw, the tags averaging fewer
    samples per minute get a marker instead of their minutes."""
    tmp = _tmp(kind, day)
    cur.execute(f"DROP TABLE IF EXISTS {tmp}")
    cur.execute(f"CREATE TABLE {tmp} ({BLOCK_DDL if kind == RAW else R1M_COMPACTED_COLUMNS})")
    try:
        for lo, hi in tag_groups(cur, _source(kind, day), CHUNK_ROWS if kind == RAW else max(1, CHUNK_ROWS // 8),
                                 "sum(k)"):
            _copy(cur, kind, day, tmp, lo, hi, with_raw, sparse)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"DROP TABLE IF EXISTS {tmp}")
        raise


def _copy(cur: duckdb.DuckDBPyConnection, kind: str, day: int, into: str, lo: int, hi: int, with_raw: bool,
          sparse: int) -> None:
    """Rewrite tags ``lo..hi`` of a day into ``into``; a statement that runs out of the engine's memory limit
    (it depends on the data and on what else holds memory: a 30-day store of 1,000 tags ran out on minute rows)
    is rolled back (what a raw group inserted before it ran out deleted) and done again in two halves of its
    tags, down to one tag."""
    try:
        _rewrite(cur, kind, day, into, lo, hi, with_raw, sparse)
    except duckdb.OutOfMemoryException:
        cur.execute(f"DELETE FROM {into} WHERE tag_id BETWEEN {lo} AND {hi}")  # a raw group's first inserts
        ids = [t for (t,) in cur.execute(f"SELECT DISTINCT tag_id FROM {_source(kind, day)} "
                                          f"WHERE tag_id BETWEEN {lo} AND {hi} ORDER BY tag_id").fetchall()]
        if len(ids) < 2:
            raise
        mid = ids[len(ids) // 2]
        log.info("historian: compacting %s, tags %d-%d: out of memory, in two halves", table(kind, day), lo, hi)
        _copy(cur, kind, day, into, lo, mid - 1, with_raw, sparse)
        _copy(cur, kind, day, into, mid, hi, with_raw, sparse)


def _record(con: duckdb.DuckDBPyConnection, name: str, rows: int) -> None:
    con.execute("INSERT OR REPLACE INTO compacted VALUES (?, ?)", [name, rows])


def swap(con: duckdb.DuckDBPyConnection, kind: str, day: int) -> int:
    """Put the prepared copy in the table's place and record its row count, in one transaction (the caller
    holds the write lock and checked that nothing wrote into the day since the copy began). A raw day's copy
    is its blocks: it takes the place of the blocks table, and the raw table (whose rows it holds) starts
    again empty."""
    name = table(kind, day)

    def record() -> int:
        if kind == RAW:
            con.execute(f"DROP TABLE {name}")
            con.execute(f"CREATE TABLE {name} ({RAW_COLUMNS})")
        rows = _count(con, name)
        _record(con, name, rows)
        return rows

    return swap_in(con, _tmp(kind, day), blocks_table(day) if kind == RAW else name, then=record) or 0


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def discard(con: duckdb.DuckDBPyConnection, kind: str, day: int) -> None:
    con.execute(f"DROP TABLE IF EXISTS {_tmp(kind, day)}")


def run(
    cur: duckdb.DuckDBPyConnection,
    con_of: Callable[[], duckdb.DuckDBPyConnection],
    write_lock: threading.RLock,
    snapshot: Callable[[], Snapshot],
    touched: Touched,
    now_us: int,
    sparse: int = 0,
) -> int:
    """Compact every due table: the copy on ``cur`` without the write lock, the swap under it, unless a flush
    wrote into that day meanwhile (then the copy is dropped and the next pass tries again). Returns how
    many tables were swapped. ``sparse``: ``settings.sparse_minutes`` (0: every tag's minutes stored, and a
    day's raw is read only for the markers a store compacted with it on left)."""
    done = 0
    for kind, d in due(cur, snapshot(), now_us):
        before = touched.get(d)
        snap = snapshot()
        prepare(cur, kind, d, d in snap.raw and (sparse > 0 or d in snap.marked), sparse)
        with write_lock:
            current = touched.get(d) == before and d in (snapshot().raw if kind == RAW else snapshot().r1m)
            if current:
                if kind == R1M and _scalar(con_of(), f"SELECT count(*) FROM {_tmp(kind, d)} WHERE n = 0"):
                    touched.mark({d})
                swap(con_of(), kind, d)
                checkpoint(con_of())  # the old table's blocks are free for the next day's copy
                done += 1
            else:
                discard(con_of(), kind, d)
    if done:  # what the swaps freed (a pass that compacted nothing leaves the file as the last one did)
        reclaim.run(con_of, write_lock)
    return done


def marked_days(con: duckdb.DuckDBPyConnection, days: set[int]) -> set[int]:
    """The days among ``days`` whose minute table holds a marker (at open: 100 tables a query)."""
    found: set[int] = set()
    order = sorted(days)
    for i in range(0, len(order), 100):
        sql = " UNION ALL ".join(f"(SELECT {d} FROM {table(R1M, d)} WHERE n = 0 LIMIT 1)" for d in order[i:i + 100])
        found |= {int(d) for (d,) in con.execute(sql).fetchall()}
    return found


def forget_dropped(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the tables that retention dropped."""
    con.execute("DELETE FROM compacted WHERE name NOT IN (SELECT table_name FROM duckdb_tables())")


def checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Write the compacted tables out and free the old blocks (skipped while other transactions run)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("CHECKPOINT")
