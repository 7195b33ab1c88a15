"""One-hour and one-day rollups, built from the one-minute ones by the runtime's maintenance (off the event loop).

An hour's row is one *partial* (see ``rollup``) folded from its minute partials: counts and sums add, min and
max fold, first and last are the earliest and latest, and ``integ`` adds the gaps between consecutive
partials inside the hour (``prev last_v x (first_ts - prev last_ts)``), exactly what ``aggregate.combine``
adds when it folds the minutes itself. Aggregates whose interval is a whole number of hours therefore read
one row per tag and hour and give the answer the minutes (and the raw samples) give.

``r1h`` is one table; ``r1h_built.upto`` says up to which hour it is complete. A flush that stores a
sample before ``upto`` (late or out-of-order data, a write-ahead-log replay) lowers ``upto`` to that hour in
the same transaction, and queries read minutes there until the next build recomputes the hours from it on.

``r1d`` holds one row per tag and UTC day folded the same way from the built hours; its ``upto`` is the row
``DAYS`` of ``r1h_built``, lowered with the hours' (to the day's start) and built after them.
"""

from __future__ import annotations

import duckdb

from plantlink.historian.duckdb.layout import DAY_US, R1M_COLUMNS, RAW, r1m, swap_in, tables_of

HOUR_US = 3_600_000_000
R1H = "r1h"
R1H_DDL = f"CREATE TABLE IF NOT EXISTS {R1H} ({R1M_COLUMNS})"
R1D = "r1d"
R1D_DDL = f"CREATE TABLE IF NOT EXISTS {R1D} ({R1M_COLUMNS})"
HOURS, DAYS = 1, 2  # the rows of ``r1h_built``: up to where the hours and the days are built
BUILT_DDL = "CREATE TABLE IF NOT EXISTS r1h_built (id UTINYINT PRIMARY KEY, upto BIGINT NOT NULL)"
#: An hour is built once it ended this long ago (later samples of it lower ``upto`` again).
SETTLE_US = 60_000_000

_FOLD = """
WITH src AS ({src}),
s AS (
    SELECT *, bucket - bucket % {hour} AS h,
           lag(last_ts) OVER w AS pts, lag(last_v) OVER w AS pv, lag(bucket - bucket % {hour}) OVER w AS ph
    FROM src WINDOW w AS (PARTITION BY tag_id ORDER BY first_ts, last_ts)
)
SELECT tag_id, h, sum(n)::UINTEGER, min(vmin), max(vmax), sum(vsum), min(first_ts), arg_min(first_v, first_ts),
       max(last_ts), arg_max(last_v, last_ts),
       sum(integ) + sum(CASE WHEN ph = h THEN pv * (first_ts - pts) ELSE 0.0 END)
FROM s GROUP BY tag_id, h
"""


def fold(src: str, width: int) -> str:
    """A SELECT folding the partial rows of ``src`` into one per (tag, bucket of ``width`` us): columns in
    ``R1M_NAMES`` order, the bucket named ``h``."""
    return _FOLD.format(src=src, hour=width)


def create(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Create the tables when missing; return ``upto`` of the hours and of the days (0: nothing built yet)."""
    con.execute(R1H_DDL)
    con.execute(R1D_DDL)
    con.execute(BUILT_DDL)
    return built_upto(con)


def built_upto(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """``upto`` of the hours and of the days (0 when not built, or when a store opened read-only never had the
    tables)."""
    try:
        built = dict(con.execute("SELECT id, upto FROM r1h_built").fetchall())
    except duckdb.CatalogException:
        return 0, 0
    return int(built.get(HOURS, 0)), int(built.get(DAYS, 0))


def set_upto(con: duckdb.DuckDBPyConnection, upto: int, level: int = HOURS) -> None:
    """Say the hours (or days) before ``upto`` are built (a flush with samples in a built one lowers it)."""
    con.execute("INSERT OR REPLACE INTO r1h_built VALUES (?, ?)", [level, upto])


def sort_hours(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite ``r1h`` in (tag_id, bucket) order in one transaction. Builds append one stretch of hours of
    every tag at a time, so without it each row group holds every tag and one tag's year (8,760 rows) scans
    all of them (8.76 M rows for 1,000 tags). The store does it when a day's hours are complete."""
    tmp = f"{R1H}_sorting"

    def fill() -> None:
        con.execute(f"CREATE TABLE {tmp} ({R1M_COLUMNS})")
        con.execute(f"INSERT INTO {tmp} SELECT * FROM {R1H} ORDER BY tag_id, bucket")

    swap_in(con, tmp, R1H, fill=fill)


def lower(con: duckdb.DuckDBPyConnection, hour: int, day: int) -> None:
    """Late samples: the hours from ``hour`` and the days from ``day`` on are to be built again."""
    set_upto(con, hour)
    set_upto(con, day, DAYS)


def build_days(con: duckdb.DuckDBPyConnection, upto_d: int, upto_h: int) -> tuple[int, int]:
    """Fold the built hours into 1-day rows (``r1d``), every whole UTC day from ``upto_d`` (or the first hour
    stored) to the last day whose hours are all built, in one transaction. Returns (rows, the new upto)."""
    hi = upto_h // DAY_US * DAY_US
    if not upto_d:
        first = con.execute(f"SELECT min(bucket) FROM {R1H}").fetchall()[0][0]
        upto_d = int(first) // DAY_US * DAY_US if first is not None else hi
    if upto_d >= hi:
        return 0, upto_d
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {R1D} WHERE bucket >= ?", [upto_d])
        src = f"SELECT * FROM {R1H} WHERE bucket >= {upto_d} AND bucket < {hi}"
        row = con.execute(f"INSERT INTO {R1D} {fold(src, DAY_US)} ORDER BY 1, 2").fetchone()
        set_upto(con, hi, DAYS)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return (int(row[0]) if row else 0), hi


def build(con: duckdb.DuckDBPyConnection, upto: int, r1m_days: set[int], now_us: int) -> tuple[int, int]:
    """Build every hour from ``upto`` (or the first stored minute) to the last one that ended ``SETTLE_US``
    ago, in one transaction. Returns (rows built, the new ``upto``)."""
    hi = (now_us - SETTLE_US) // HOUR_US * HOUR_US
    lo = upto if upto else (min(r1m_days) * DAY_US if r1m_days else hi)
    if lo >= hi:
        return 0, upto
    built = 0
    raws = tables_of(con, RAW)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {R1H} WHERE bucket >= ?", [lo])
        for d in sorted(x for x in r1m_days if lo < (x + 1) * DAY_US and x * DAY_US < hi):
            src = f"SELECT * FROM {r1m(d, d in raws)} WHERE bucket >= {max(lo, d * DAY_US)} AND bucket < {hi}"
            row = con.execute(f"INSERT INTO {R1H} {fold(src, HOUR_US)}").fetchone()
            built += int(row[0]) if row else 0
        set_upto(con, hi)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return built, hi


def apply_retention(con: duckdb.DuckDBPyConnection, keep_s: float | None, now_us: int) -> int:
    if keep_s is None:
        return 0
    cutoff = now_us - int(keep_s * 1e6)
    row = con.execute(f"DELETE FROM {R1H} WHERE bucket + {HOUR_US} <= ?", [cutoff]).fetchone()
    return int(row[0]) if row else 0  # the days (r1d) are kept: a year of one tag is 365 rows
