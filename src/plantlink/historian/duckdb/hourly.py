"""One-hour rollups, built from the one-minute ones by the runtime's maintenance (off the event loop).

An hour's row is one *partial* (see ``rollup``) folded from its minute partials: counts and sums add, min and
max fold, first and last are the earliest and latest, and ``integ`` adds the gaps between consecutive
partials inside the hour (``prev last_v x (first_ts - prev last_ts)``), exactly what ``aggregate.combine``
adds when it folds the minutes itself. Aggregates whose interval is a whole number of hours therefore read
one row per tag and hour and give the answer the minutes (and the raw samples) give.

``r1h`` is one table; ``r1h_built.upto`` says up to which hour it is complete. A flush that stores a
sample before ``upto`` (late or out-of-order data, a write-ahead-log replay) lowers ``upto`` to that hour in
the same transaction, and queries read minutes there until the next build recomputes the hours from it on.
"""

from __future__ import annotations

import duckdb

from plantlink.historian.duckdb.layout import DAY_US, R1M, R1M_COLUMNS, table

HOUR_US = 3_600_000_000
R1H = "r1h"
R1H_DDL = f"CREATE TABLE IF NOT EXISTS {R1H} ({R1M_COLUMNS})"
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


def create(con: duckdb.DuckDBPyConnection) -> int:
    """Create the tables when missing; return ``upto`` (0: nothing built yet)."""
    con.execute(R1H_DDL)
    con.execute(BUILT_DDL)
    row = con.execute("SELECT upto FROM r1h_built WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def built_upto(con: duckdb.DuckDBPyConnection) -> int:
    """``upto`` of a store opened read-only (0 when its tables were never created)."""
    try:
        row = con.execute("SELECT upto FROM r1h_built WHERE id = 1").fetchone()
    except duckdb.CatalogException:
        return 0
    return int(row[0]) if row else 0


def set_upto(con: duckdb.DuckDBPyConnection, upto: int) -> None:
    """Say the hours before ``upto`` are built (a flush with samples in a built hour lowers it)."""
    con.execute("INSERT OR REPLACE INTO r1h_built VALUES (1, ?)", [upto])


def build(con: duckdb.DuckDBPyConnection, upto: int, r1m_days: set[int], now_us: int) -> tuple[int, int]:
    """Build every hour from ``upto`` (or the first stored minute) to the last one that ended ``SETTLE_US``
    ago, in one transaction. Returns (rows built, the new ``upto``)."""
    hi = (now_us - SETTLE_US) // HOUR_US * HOUR_US
    lo = upto if upto else (min(r1m_days) * DAY_US if r1m_days else hi)
    if lo >= hi:
        return 0, upto
    built = 0
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {R1H} WHERE bucket >= ?", [lo])
        for d in sorted(x for x in r1m_days if lo < (x + 1) * DAY_US and x * DAY_US < hi):
            src = f"SELECT * FROM {table(R1M, d)} WHERE bucket >= {max(lo, d * DAY_US)} AND bucket < {hi}"
            row = con.execute(f"INSERT INTO {R1H} {_FOLD.format(src=src, hour=HOUR_US)}").fetchone()
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
    return int(row[0]) if row else 0
