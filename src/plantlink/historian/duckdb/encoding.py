"""Lossless decimal encoding of a compacted day's raw values.

DuckDB compresses a DOUBLE column with ALP: per vector of 1,024 values it turns them into integers and
bit-packs them against their minimum, so it pays for the *range* a series covers; a BIGINT column is
bit-packed in delta mode, so a slowly moving series pays for its *steps*. Most sensor values are exact
decimals (a reading of 23.47 is the float nearest to 2347 / 100), so compaction stores them as integers:

* per tag (of the day), ``d`` = the largest of the rows' smallest scales ``0..MAX_SCALE`` at which the value
  round-trips exactly (``round(v * 10**d) / 10**d == v`` in float64); rows that need more digits, or none
  (NaN, infinity, -0.0, beyond 2**53 once scaled) do not count;
* each row whose value round-trips exactly at its tag's ``d`` is stored as ``iv = round(v * 10**d)`` and
  ``sc = d`` with ``value`` NULL; every other row keeps its ``value`` (DOUBLE) and NULL ``iv``, ``sc``.

``layout.RAW_VALUE`` reads ``iv::DOUBLE / pow(10, sc)`` back: the very expression checked here, so the value
read is the value written, bit for bit. Late samples appended after compaction keep ``value``; the next
compaction of the day re-encodes them.
"""

from __future__ import annotations

from plantlink.historian.duckdb.layout import DAY_US, MAX_SCALE, te

_LIMIT = 2**53


def _fits(v: str, d: str) -> str:
    """SQL: ``v`` is finite, not -0.0, and round-trips exactly at scale ``d`` (an integer expression)."""
    k = f"round({v} * pow(10, {d}))"
    return (f"(isfinite({v}) AND NOT ({v} = 0 AND signbit({v})) AND abs({k}) < {_LIMIT} "
            f"AND {k} / pow(10, {d}) = {v})")


def _row_scale(v: str) -> str:
    """SQL: the smallest scale at which ``v`` round-trips, NULL if none up to MAX_SCALE."""
    whens = " ".join(f"WHEN {_fits(v, str(d))} THEN {d}" for d in range(MAX_SCALE + 1))
    return f"CASE {whens} END"


def _ts_unit(ts: str, day: int) -> str:
    """SQL: the largest of 1, 10, ..., 10 ** 6 microseconds that divides the time in the day ``ts``."""
    whens = " ".join(f"WHEN ({ts} - {day * DAY_US}) % {10**k} = 0 THEN {10**k}" for k in range(6, 0, -1))
    return f"CASE {whens} ELSE 1 END"


def encode_sql(source: str, into: str, day: int) -> str:
    """The INSERT that writes the rows of ``source`` (a FROM item with tag_id, ts, value, quality of partition
    ``day``) into the table ``into``, sorted by (tag_id, ts), the exact decimals as (iv, sc), the times as
    ``te`` in units of ``tu`` (``layout.te``: per tag, the largest power of ten of microseconds dividing all
    its times of the day). ``source`` is scanned twice (the scales, then the rows) rather than named once in
    a CTE, which DuckDB would materialize in memory."""
    return f"""
INSERT INTO {into} (tag_id, ts, value, quality, iv, sc, te, tu)
WITH scale AS (SELECT tag_id, (max(d) FILTER (WHERE d IS NOT NULL))::UTINYINT AS d, min(u)::UINTEGER AS u
               FROM (SELECT tag_id, {_row_scale("value")} AS d, {_ts_unit("ts", day)} AS u FROM {source})
               GROUP BY tag_id),
rows AS (SELECT s.tag_id, s.ts, s.value, s.quality, c.d, c.u, coalesce({_fits("s.value", "c.d")}, false) AS ok
         FROM {source} s JOIN scale c USING (tag_id))
SELECT tag_id, NULL, CASE WHEN ok THEN NULL ELSE value END, quality,
       CASE WHEN ok THEN round(value * pow(10, d))::BIGINT END, CASE WHEN ok THEN d END, {te(day, "ts", "u")}, u
FROM rows ORDER BY tag_id, ts
"""
