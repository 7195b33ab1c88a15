"""The good raw samples of some tags over a time range, the blocks decoded by numpy rather than in SQL.

``layout.raw_good`` reads a compacted day's blocks through SQL functions whose lists DuckDB then unnests,
filters and hands back to Arrow; the readers that fold samples in numpy anyway (aggregates at intervals that
are not whole minutes, sparse tags' minutes, a tag's series for downsampling) skip those steps: they read the
blocks' blobs, only of the blocks whose time span meets the range (``t0``, ``t1``), and decode them here.
The samples stored as rows (the open day, late samples) are read by SQL as before. Nothing is sorted: the
callers put the samples in (tag, time) order.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.historian.duckdb import blocks
from plantlink.historian.duckdb.layout import GOOD_MIN, RAW, rows_good, table

SCHEMA = pa.schema([("tag_id", pa.uint32()), ("ts", pa.int64()), ("value", pa.float64())])


def good(cur: duckdb.DuckDBPyConnection, days: list[int], ids: str, lo: int, hi: int) -> pa.Table:
    """Columns tag_id, ts, value of the good samples (quality >= ``GOOD_MIN``, a finite value) of the tags
    ``ids`` (a WHERE fragment on ``tag_id``) with ``lo <= ts < hi`` in the day partitions ``days``."""
    if not days:
        return SCHEMA.empty_table()
    span = f"ts >= {lo} AND ts < {hi}"
    rows = cur.sql(" UNION ALL ".join(f"SELECT tag_id, ts, value FROM {rows_good(d)} WHERE {ids} AND {span}"
                                      for d in days)).to_arrow_table()
    found = [rows.cast(SCHEMA)] if rows.num_rows else []
    coded = cur.sql(" UNION ALL ".join(
        f"SELECT tag_id, n, t0, vm, tb, vb, qb FROM {table(RAW, d)} WHERE tb IS NOT NULL AND {ids} "
        f"AND t1 >= {lo} AND t0 < {hi}" for d in days)).to_arrow_table()
    if coded.num_rows:
        found.append(_decoded(coded, lo, hi))
    return pa.concat_tables(found) if found else SCHEMA.empty_table()


def _decoded(coded: pa.Table, lo: int, hi: int) -> pa.Table:
    ns = np.asarray(coded.column("n").to_numpy(), np.int64)
    ts = blocks.times_many(np.asarray(coded.column("t0").to_numpy(), np.int64), ns, coded.column("tb").to_pylist())
    value = blocks.values_many(np.asarray(coded.column("vm").to_numpy(), np.int64), ns,
                               coded.column("vb").to_pylist())
    keep = (blocks.qualities_many(ns, coded.column("qb").to_pylist()) >= GOOD_MIN) & np.isfinite(value)
    keep &= (ts >= lo) & (ts < hi)
    tag = np.repeat(np.asarray(coded.column("tag_id").to_numpy(), np.uint32), ns)
    return pa.table([pa.array(tag[keep]), pa.array(ts[keep]), pa.array(value[keep])], schema=SCHEMA)
