"""Physical layout: one raw table and one 1-minute rollup table per UTC day, plus tags, text and WAL position.

Day partitions make retention a ``DROP TABLE`` and let a query touch only the days it covers. Every flush
appends one chunk per day sorted by ``(tag_id, ts)``, so a tag's samples sit in a few contiguous runs and
DuckDB's per-row-group min/max statistics skip the rest of the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb

DAY_US = 86_400_000_000
MINUTE_US = 60_000_000
GOOD_MIN = 64  # quality codes below this (Quality.UNCERTAIN) are bad and ignored by aggregates

RAW = "raw"
R1M = "r1m"
_NAME = re.compile(r"^(raw|r1m)_d(n?)(\d+)$")

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
#: ``value`` holds a sample's float; a compacted day holds instead, for the values that are exact decimals,
#: ``iv`` (the value times 10 ** ``sc``, an integer) and ``sc`` (``compaction`` says which). Read the raw
#: samples only through ``raw(day)``, which gives ``value`` back bit for bit.
RAW_COLUMNS = (
    "tag_id UINTEGER NOT NULL, ts BIGINT NOT NULL, value DOUBLE, quality UTINYINT NOT NULL, iv BIGINT, sc UTINYINT"
)
#: The columns a writer inserts (the others stay NULL).
RAW_INSERT = "tag_id, ts, value, quality"
#: A raw row's value: ``value``, else the exact decimal ``iv / 10 ** sc``.
RAW_VALUE = "CASE WHEN iv IS NULL THEN value ELSE iv::DOUBLE / pow(10, sc) END"
R1M_COLUMNS = (
    "tag_id UINTEGER NOT NULL, bucket BIGINT NOT NULL, n UINTEGER NOT NULL, vmin DOUBLE, vmax DOUBLE, "
    "vsum DOUBLE, first_ts BIGINT NOT NULL, first_v DOUBLE, last_ts BIGINT NOT NULL, last_v DOUBLE, "
    "integ DOUBLE"
)
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


def table_kind(name: str) -> str | None:
    """``raw`` or ``r1m`` for the name of a day partition, None for any other table."""
    m = _NAME.match(name)
    return m.group(1) if m else None


def raw(day: int) -> str:
    """The raw samples of partition ``day`` as a FROM item with columns (tag_id, ts, value, quality): every
    read of raw samples goes through here, whatever the encoding of the values."""
    return f"(SELECT tag_id, ts, {RAW_VALUE} AS value, quality FROM {table(RAW, day)})"


def create(con: duckdb.DuckDBPyConnection, kind: str, day: int) -> None:
    cols = RAW_COLUMNS if kind == RAW else R1M_COLUMNS
    con.execute(f"CREATE TABLE IF NOT EXISTS {table(kind, day)} ({cols})")


def existing(con: duckdb.DuckDBPyConnection) -> dict[str, set[int]]:
    """The day partitions present in the database, by kind (raw tables of an older store get the columns
    ``iv`` and ``sc``, NULL: ``raw(day)`` reads every raw table the same way)."""
    found: dict[str, set[int]] = {RAW: set(), R1M: set()}
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    for (name,) in rows:
        m = _NAME.match(name)
        if m:
            day = int(m.group(3))
            found[m.group(1)].add(-day if m.group(2) else day)
    _add_encoded_columns(con, found[RAW])
    return found


def _add_encoded_columns(con: duckdb.DuckDBPyConnection, raw_days: Iterable[int]) -> None:
    have = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_columns() WHERE schema_name = 'main' AND column_name = 'sc'").fetchall()}
    for d in raw_days:
        name = table(RAW, d)
        if name not in have:
            con.execute(f"ALTER TABLE {name} ADD COLUMN iv BIGINT")
            con.execute(f"ALTER TABLE {name} ADD COLUMN sc UTINYINT")


def days_between(days: Iterable[int], start_us: int, end_us: int) -> list[int]:
    """The partitions (ascending) that may hold ``start_us <= ts < end_us``."""
    lo, hi = day_of(start_us), day_of(end_us - 1)
    return sorted(d for d in days if lo <= d <= hi)


def id_filter(tag_ids: Iterable[int]) -> str:
    """A WHERE fragment for a set of integer tag ids; the BETWEEN lets row-group statistics prune."""
    ids = sorted({int(t) for t in tag_ids})
    if len(ids) == 1:
        return f"tag_id = {ids[0]}"
    return f"tag_id BETWEEN {ids[0]} AND {ids[-1]} AND tag_id IN ({','.join(map(str, ids))})"
