"""Physical layout: one raw table and one 1-minute rollup table per UTC day, plus tags, text and WAL position.

Day partitions make retention a ``DROP TABLE`` and let a query touch only the days it covers. Every flush
appends one chunk per day sorted by ``(tag_id, ts)``, so a tag's samples sit in a few contiguous runs and
DuckDB's per-row-group min/max statistics skip the rest of the table.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

import duckdb

DAY_US = 86_400_000_000
MINUTE_US = 60_000_000
GOOD_MIN = 64  # quality codes below this (Quality.UNCERTAIN) are bad and ignored by aggregates

RAW = "raw"
R1M = "r1m"
_NAME = re.compile(r"^(raw|r1m)_d(n?)(\d+)$")
_BLOCKS_NAME = re.compile(r"^rawb_dn?\d+$")
#: A table of an older store being copied to the current columns (``_upgrade``); one left by a crash is dropped.
_UPGRADING = "_upgrading"
#: Rows copied by one statement of ``_upgrade`` (each committed on its own: bounded memory).
UPGRADE_ROWS = 500_000

log = logging.getLogger("plantlink.historian")
T = TypeVar("T")

TAGS_DDL = """
CREATE TABLE IF NOT EXISTS tags (
    tag_id UINTEGER PRIMARY KEY, path VARCHAR NOT NULL UNIQUE, unit VARCHAR NOT NULL, type VARCHAR NOT NULL)
"""
TEXT_DDL = """
CREATE TABLE IF NOT EXISTS text_samples (tag_id UINTEGER NOT NULL, ts BIGINT NOT NULL, value VARCHAR,
    quality UTINYINT NOT NULL)
"""
#: The highest write-ahead-log sequence number whose batch is stored (one row, written with the samples).
WAL_DDL = "CREATE TABLE IF NOT EXISTS wal_position (id UTINYINT PRIMARY KEY, seq UBIGINT NOT NULL)"
#: ``value`` holds a sample's float. A compacted day holds its samples in the day's blocks table instead
#: (``BLOCKS``), its raw table only the rows written after (late samples). A day compacted by a plantlink from
#: before the blocks holds ``ts`` NULL and ``te`` (the time in the day plus ``(tag_id & TE_TAGS)`` days, in
#: units of ``tu`` microseconds) and, for exact decimals, ``iv`` and ``sc`` (``iv / 10 ** sc``): read, never
#: written. Read the raw samples only through ``raw(day)``, which gives ``ts`` and ``value`` back bit for bit.
RAW_COLUMNS = (
    "tag_id UINTEGER NOT NULL, ts BIGINT NOT NULL, value DOUBLE, quality UTINYINT NOT NULL, iv BIGINT, sc UTINYINT, "
    "te BIGINT, tu UINTEGER"
)
#: A day's blocks (``blocks``), a table beside its raw table (``blocks_table``): each row ``n`` samples of one
#: tag from ``t0`` to ``t1``, value mode ``vm``, the coded times ``tb``, values ``vb`` and qualities ``qb``. Not
#: columns of the raw table: seven more columns, NULL in every row a flush appends, made ``write()`` half as
#: slow again (8.64 M samples in 7.4 s against 5.0).
BLOCKS = "rawb"
BLOCK_DDL = ("tag_id UINTEGER NOT NULL, n UINTEGER NOT NULL, t0 BIGINT NOT NULL, t1 BIGINT NOT NULL, "
             "vm UTINYINT NOT NULL, tb BLOB NOT NULL, vb BLOB NOT NULL, qb BLOB NOT NULL")
BLOCK_COLUMNS = "tag_id, n, t0, t1, vm, tb, vb, qb"
#: The SQL functions that decode a block's times, values and qualities into lists (``blocks.register``).
TS_FN, VALUE_FN, QUALITY_FN = "plantlink_block_ts", "plantlink_block_value", "plantlink_block_quality"
#: The columns of a raw table compacted before the blocks (``ts`` may be NULL).
RAW_COMPACTED_COLUMNS = RAW_COLUMNS.replace("ts BIGINT NOT NULL", "ts BIGINT")
#: ``te`` counts days of the low 20 bits of the tag id (2 ** 20 days of microseconds stay below 2 ** 63).
TE_TAGS = 2**20 - 1
#: The columns a writer inserts (the others stay NULL).
RAW_INSERT = "tag_id, ts, value, quality"
#: A raw row's value: ``value``, else the exact decimal ``iv / 10 ** sc``. The powers of ten are constants
#: (each exact, so the same bits as ``pow(10, sc)``, which cost about 30 ms per 8.6 M rows).
#: The most decimals compaction tries when it stores a value as a scaled integer (``blocks``; a scaled value
#: must stay below 2 ** 53).
MAX_SCALE = 6
_POW10 = ", ".join(f"1e{d}" for d in range(MAX_SCALE + 1))
RAW_VALUE = f"CASE WHEN iv IS NULL THEN value ELSE iv::DOUBLE / [{_POW10}][sc + 1] END"
R1M_COLUMNS = (
    "tag_id UINTEGER NOT NULL, bucket BIGINT NOT NULL, n UINTEGER NOT NULL, vmin DOUBLE, vmax DOUBLE, "
    "vsum DOUBLE, first_ts BIGINT NOT NULL, first_v DOUBLE, last_ts BIGINT NOT NULL, last_v DOUBLE, "
    "integ DOUBLE"
)
#: A compacted day's 1-minute rows hold ``bucket``, ``first_ts`` and ``last_ts`` NULL and instead ``mo`` (the
#: minute of the day), ``fo`` and ``lo`` (``first_ts`` and ``last_ts`` minus the bucket): an absolute time
#: jumps back at each tag's first row, which costs DuckDB's bit-packing 37 bits per row of every 2,048-row frame
#: holding a jump (a tag's day is 1,440 rows), where these take 11 bits and a constant (per tag, the sampling
#: phase). Rows appended later (late samples) keep the absolute columns. Read the minutes only through
#: ``r1m(day)``.
R1M_ENCODED = "mo USMALLINT, fo UINTEGER, lo UINTEGER"
#: The columns of a compacted 1-minute table (the absolute times may be NULL).
R1M_COMPACTED_COLUMNS = ", ".join(
    c.replace(" NOT NULL", "") if c.split()[0] in ("bucket", "first_ts", "last_ts") else c
    for c in f"{R1M_COLUMNS}, {R1M_ENCODED}".split(", "))
R1M_NAMES = (
    "tag_id",
    "bucket",
    "n",
    "vmin",
    "vmax",
    "vsum",
    "first_ts",
    "first_v",
    "last_ts",
    "last_v",
    "integ",
)


def day_of(ts_us: int) -> int:
    return ts_us // DAY_US


def table(kind: str, day: int) -> str:
    """The table name of partition ``day`` (days since the epoch) of ``kind`` (``raw`` or ``r1m``)."""
    return f"{kind}_dn{-day}" if day < 0 else f"{kind}_d{day}"


def blocks_table(day: int) -> str:
    """The name of the blocks table of raw partition ``day``."""
    return table(BLOCKS, day)


def table_kind(name: str) -> str | None:
    """``raw`` or ``r1m`` for the name of a day partition, None for any other table."""
    m = _NAME.match(name)
    return m.group(1) if m else None


def _decoded_bucket(day: int, q: str) -> str:
    return f"{day * DAY_US} + {q}mo::BIGINT * {MINUTE_US}"


def _stored_or_decoded(column: str, decoded: Callable[[int, str], str], day: int, of: str) -> str:
    """SQL: ``column`` where stored, else its ``decoded`` form (``of``: a table name or alias to qualify the
    columns with)."""
    q = f"{of}." if of else ""
    return f"coalesce({q}{column}, {decoded(day, q)})"


def r1m_bucket(day: int, of: str = "") -> str:
    """SQL: a 1-minute row's bucket."""
    return _stored_or_decoded("bucket", _decoded_bucket, day, of)


def r1m(day: int, with_raw: bool) -> str:
    """The 1-minute rows of partition ``day`` as a FROM item with the columns ``R1M_NAMES`` (absolute times),
    whatever their encoding: every read of minute rows goes through here. The rows stored with absolute times
    and the encoded ones are two branches of a UNION ALL, so a filter on ``bucket`` reaches the stored column
    (and its row-group statistics) in the first, and a table holding no encoded rows skips the second. The
    tags whose minutes compaction left in raw (``settings.sparse_minutes``: one marker row each, ``n`` 0, every
    other column but ``tag_id`` NULL) are a third branch, their raw samples as partial rows; ``with_raw``: the
    day's raw table exists (a day without one holds no marker)."""
    t, b = table(R1M, day), _decoded_bucket(day, "")
    stored = (f"(SELECT {', '.join(R1M_NAMES)} FROM {t} WHERE bucket IS NOT NULL UNION ALL "
              f"SELECT tag_id, {b} AS bucket, n, vmin, vmax, vsum, {b} + fo AS first_ts, first_v, {b} + lo AS last_ts, "
              f"last_v, integ FROM {t} WHERE bucket IS NULL AND n > 0")
    if not with_raw:
        return stored + ")"
    return f"{stored} UNION ALL {raw_minutes(day, f'SELECT tag_id FROM {t} WHERE n = 0')})"


def raw_minutes(day: int, tags: str) -> str:
    """SELECT: the good raw samples of partition ``day`` of the tags ``tags`` (a SELECT of ``tag_id``) as partial
    minute rows (``n`` 1, ``integ`` 0: ``rollup``), columns ``R1M_NAMES``. A join with the tags on its build
    side, not ``IN``: no tag, no scan of the raw day (a day of 100 tags at 1 Hz read at 5 min took 113 ms with
    ``IN``, 50 without the branch)."""
    return (f"SELECT r.tag_id, r.ts - r.ts % {MINUTE_US} AS bucket, 1::UINTEGER AS n, r.value AS vmin, "
            f"r.value AS vmax, r.value AS vsum, r.ts AS first_ts, r.value AS first_v, r.ts AS last_ts, "
            f"r.value AS last_v, 0.0::DOUBLE AS integ FROM ({tags}) AS k JOIN {raw_good(day)} AS r "
            "ON r.tag_id = k.tag_id")


def te(day: int, ts: str, unit: str) -> str:
    """SQL: the ``te`` of a raw row of partition ``day`` whose time is ``ts``, in units of ``unit`` us."""
    return f"(({ts} - {day * DAY_US}) // {unit} + (tag_id & {TE_TAGS})::BIGINT * ({DAY_US} // {unit}))"


def _decoded_ts(day: int, q: str) -> str:
    # te * tu is exactly (ts - day start) + (tag_id & TE_TAGS) days: tu divides both (no division here)
    return f"{day * DAY_US} + {q}te * {q}tu - ({q}tag_id & {TE_TAGS})::BIGINT * {DAY_US}"


def raw_ts(day: int, of: str = "") -> str:
    """SQL: a raw row's time."""
    return _stored_or_decoded("ts", _decoded_ts, day, of)


def blocks_of(day: int) -> str:
    """The samples of partition ``day`` held in blocks (``blocks``) as a FROM item with columns (tag_id, ts, value,
    quality): each block row decoded into lists and unnested (a filter on ``tag_id`` reaches the table, so
    only the blocks of the tags asked for are decoded)."""
    return (f"(SELECT tag_id, unnest({TS_FN}(t0, n, tb)) AS ts, unnest({VALUE_FN}(vm, n, vb)) AS value, "
            f"unnest({QUALITY_FN}(n, qb)) AS quality FROM {blocks_table(day)})")


def raw(day: int) -> str:
    """The raw samples of partition ``day`` as a FROM item with columns (tag_id, ts, value, quality): every
    read of raw samples goes through here, whatever the encoding of the times and values. The rows with a
    stored ``ts`` (a filter on ``ts`` prunes row groups of the open day), the blocks of a compacted day, and
    the rows of a day compacted before the blocks (``te``) are three branches of a UNION ALL."""
    t = table(RAW, day)
    return (f"(SELECT tag_id, ts, {RAW_VALUE} AS value, quality FROM {t} WHERE ts IS NOT NULL UNION ALL "
            f"SELECT tag_id, {_decoded_ts(day, '')} AS ts, {RAW_VALUE} AS value, quality FROM {t} "
            f"WHERE ts IS NULL AND te IS NOT NULL UNION ALL SELECT * FROM {blocks_of(day)})")


def rows_good(day: int) -> str:
    """``raw_good`` without the blocks: the samples of partition ``day`` stored as rows (``blockread`` decodes
    the blocks itself)."""
    t, good = table(RAW, day), f"quality >= {GOOD_MIN} AND (iv IS NOT NULL OR isfinite(value))"
    return (f"(SELECT tag_id, ts, {RAW_VALUE} AS value FROM {t} WHERE ts IS NOT NULL AND {good} UNION ALL "
            f"SELECT tag_id, {_decoded_ts(day, '')} AS ts, {RAW_VALUE} AS value FROM {t} "
            f"WHERE ts IS NULL AND te IS NOT NULL AND {good})")


def raw_good(day: int) -> str:
    """The samples of partition ``day`` that aggregates use (quality >= ``GOOD_MIN``, a finite value) as a FROM
    item with columns (tag_id, ts, value): filtered on the stored columns (an encoded value is always finite),
    not on the decoded value; the three branches of ``raw``."""
    return (f"({rows_good(day)[1:-1]} UNION ALL SELECT tag_id, ts, value FROM {blocks_of(day)} "
            f"WHERE quality >= {GOOD_MIN} AND isfinite(value))")


def create(con: duckdb.DuckDBPyConnection, kind: str, day: int) -> None:
    """Partition ``day`` of ``kind`` (a raw day with its blocks table)."""
    cols = RAW_COLUMNS if kind == RAW else f"{R1M_COLUMNS}, {R1M_ENCODED}"
    con.execute(f"CREATE TABLE IF NOT EXISTS {table(kind, day)} ({cols})")
    if kind == RAW:
        con.execute(f"CREATE TABLE IF NOT EXISTS {blocks_table(day)} ({BLOCK_DDL})")


def existing(con: duckdb.DuckDBPyConnection) -> dict[str, set[int]]:
    """The day partitions present in the database, by kind (tables of an older store are copied to the current
    columns first, those of the encodings NULL: ``raw(day)`` and ``r1m(day)`` read every table the same way)."""
    found: dict[str, set[int]] = {RAW: set(), R1M: set()}
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    for (name,) in rows:
        if name.endswith(_UPGRADING):  # a copy a crash interrupted: the table it was copied from is intact
            con.execute(f"DROP TABLE {name}")
            continue
        m = _NAME.match(name)
        if m:
            day = int(m.group(3))
            found[m.group(1)].add(-day if m.group(2) else day)
    have = set(con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'"
                           ).fetchall())
    for kind, cols in ((RAW, RAW_COMPACTED_COLUMNS), (R1M, f"{R1M_COLUMNS}, {R1M_ENCODED}")):
        for d in sorted(found[kind]):
            _upgrade(con, table(kind, d), cols, have)
    _pair_blocks(con, {name for (name,) in rows}, found[RAW])
    return found


def _pair_blocks(con: duckdb.DuckDBPyConnection, names: set[str], raw_days: set[int]) -> None:
    """Give every raw day its blocks table (a store from before the blocks has none) and drop a blocks table
    whose raw day is gone (retention drops both in one transaction; this is for a store edited by hand)."""
    wanted = {blocks_table(d) for d in raw_days}
    for name in sorted(n for n in names if _BLOCKS_NAME.match(n) and n not in wanted):
        con.execute(f"DROP TABLE {name}")
    for d in sorted(raw_days):
        if blocks_table(d) not in names:
            create(con, RAW, d)


def _upgrade(con: duckdb.DuckDBPyConnection, name: str, columns: str, have: set[tuple[str, str]]) -> None:
    """Give a table of an older store the columns it lacks (those of the encodings: NULL) by copying it, in
    its row order (DuckDB preserves insertion order), ``UPGRADE_ROWS`` at a time, then swapping the copy in.
    Not ``ALTER TABLE ADD COLUMN``: DuckDB builds the new column of every row in memory (722 MiB for a day of
    1,000 tags at 1 Hz), far beyond the historian's memory limit. Once per table; a crash leaves the old table
    as it was."""
    names = [c.split()[0] for c in columns.split(", ")]
    present = [c for c in names if (name, c) in have]
    if len(present) == len(names):
        return
    (top,) = con.execute(f"SELECT coalesce(max(rowid), -1) FROM {name}").fetchone() or (-1,)
    log.info("historian: copying %s (%d rows) to the current layout (adding %s)", name, top + 1,
             ", ".join(c for c in names if c not in present))
    tmp, cols = name + _UPGRADING, ", ".join(present)
    con.execute(f"DROP TABLE IF EXISTS {tmp}")
    con.execute(f"CREATE TABLE {tmp} ({columns})")
    for lo in range(0, int(top) + 1, UPGRADE_ROWS):
        con.execute(f"INSERT INTO {tmp} ({cols}) SELECT {cols} FROM {name} "
                    f"WHERE rowid BETWEEN {lo} AND {lo + UPGRADE_ROWS - 1}")
    swap_in(con, tmp, name)


def in_transaction(con: duckdb.DuckDBPyConnection, *statements: str) -> None:
    """Run ``statements`` in one transaction: all of them or, on any error (raised), none."""
    con.execute("BEGIN TRANSACTION")
    try:
        for sql in statements:
            con.execute(sql)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def swap_in(con: duckdb.DuckDBPyConnection, copy: str, name: str, fill: Callable[[], object] | None = None,
            then: Callable[[], T] | None = None) -> T | None:
    """Put table ``copy`` in the place of table ``name`` in one transaction: ``fill()`` (when given: what
    writes the copy inside the transaction), drop ``name``, rename ``copy`` to it, then ``then()`` (when given:
    bookkeeping committed with the swap), whose result is returned. On any error the transaction is rolled back
    (the old table stays; a failing ROLLBACK does not hide the error) and the error raised."""
    con.execute("BEGIN TRANSACTION")
    try:
        if fill is not None:
            fill()
        con.execute(f"DROP TABLE {name}")
        con.execute(f"ALTER TABLE {copy} RENAME TO {name}")
        out = then() if then is not None else None
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    return out


def tables_of(con: duckdb.DuckDBPyConnection, kind: str) -> set[int]:
    """The days of the partitions of ``kind`` present in the database (nothing dropped or upgraded: ``existing``
    does that at open)."""
    out: set[int] = set()
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                               "AND database_name = current_database()").fetchall():
        m = _NAME.match(name)
        if m and m.group(1) == kind:
            out.add(-int(m.group(3)) if m.group(2) else int(m.group(3)))
    return out


def days_between(days: Iterable[int], start_us: int, end_us: int) -> list[int]:
    """The partitions (ascending) that may hold ``start_us <= ts < end_us``."""
    lo, hi = day_of(start_us), day_of(end_us - 1)
    return sorted(d for d in days if lo <= d <= hi)


def id_filter(tag_ids: Iterable[int]) -> str:
    """A WHERE fragment for a set of integer tag ids; the BETWEEN lets row-group statistics prune (alone when
    the ids are consecutive: the IN list cost a day of 100 tags every 10 s 6 ms of CPU more)."""
    ids = sorted({int(t) for t in tag_ids})
    if len(ids) == 1:
        return f"tag_id = {ids[0]}"
    if ids[-1] - ids[0] + 1 == len(ids):
        return f"tag_id BETWEEN {ids[0]} AND {ids[-1]}"
    return f"tag_id BETWEEN {ids[0]} AND {ids[-1]} AND tag_id IN ({','.join(map(str, ids))})"
