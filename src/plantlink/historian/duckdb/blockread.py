"""The good raw samples of some tags over a time range, the blocks decoded by numpy rather than in SQL.

``layout.raw_good`` reads a compacted day's blocks through SQL functions whose lists DuckDB then unnests,
filters and hands back to Arrow; the readers that fold samples in numpy anyway (aggregates at intervals that
are not whole minutes, sparse tags' minutes, a tag's series for downsampling) skip those steps: they read the
blocks' blobs, only of the blocks whose time span meets the range (``t0``, ``t1``), and decode them here.
The samples stored as rows (the open day, late samples) are read by SQL as before. Nothing is sorted: the
callers put the samples in (tag, time) order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.historian.duckdb import blocks
from plantlink.historian.duckdb.layout import GOOD_MIN, blocks_table, rows_good

SCHEMA = pa.schema([("tag_id", pa.uint32()), ("ts", pa.int64()), ("value", pa.float64())])


#: Reads of several days are split in two, the later half read on a second thread with a cursor of its own
#: (DuckDB's scan and zstd release the GIL): one tag over 7 days took 54 ms on one thread.
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plantlink-blockread")


def good(cur: duckdb.DuckDBPyConnection, days: list[int], ids: str, lo: int, hi: int) -> pa.Table:
    """Columns tag_id, ts, value of the good samples (quality >= ``GOOD_MIN``, a finite value) of the tags
    ``ids`` (a WHERE fragment on ``tag_id``) with ``lo <= ts < hi`` in the day partitions ``days``; two days
    or more are read on two threads."""
    if len(days) < 2:
        return _good(cur, days, ids, lo, hi)
    half = len(days) // 2
    other = cur.cursor()
    later = _POOL.submit(_good, other, days[half:], ids, lo, hi)
    try:
        first = _good(cur, days[:half], ids, lo, hi)
    finally:
        wait([later])  # the cursor is closed only once its read is over
        other.close()
    return pa.concat_tables([first, later.result()])


def _good(cur: duckdb.DuckDBPyConnection, days: list[int], ids: str, lo: int, hi: int) -> pa.Table:
    if not days:
        return SCHEMA.empty_table()
    span = f"ts >= {lo} AND ts < {hi}"
    rows = cur.sql(" UNION ALL ".join(f"SELECT tag_id, ts, value FROM {rows_good(d)} WHERE {ids} AND {span}"
                                      for d in days)).to_arrow_table()
    # Two queries, not one UNION of rows and blocks with NULL columns: an appended day's millions of rows
    # then carried six NULL columns through Arrow (aggregates of 100 tags over such a day: 340 -> 568 ms).
    coded = cur.sql(" UNION ALL ".join(
        f"SELECT tag_id, n, t0, vm, tb, vb, qb FROM {blocks_table(d)} WHERE {ids} AND t1 >= {lo} AND t0 < {hi}"
        for d in days)).to_arrow_table()
    found = [rows.cast(SCHEMA)] if rows.num_rows else []
    if coded.num_rows:
        found.append(_decoded(coded, lo, hi))
    return pa.concat_tables(found) if found else SCHEMA.empty_table()


def _decoded(coded: pa.Table, lo: int, hi: int) -> pa.Table:
    ns = np.asarray(coded.column("n").to_numpy(), np.int64)
    ts = blocks.times_many(np.asarray(coded.column("t0").to_numpy(), np.int64), ns, coded.column("tb").to_pylist())
    value = blocks.values_many(np.asarray(coded.column("vm").to_numpy(), np.int64), ns,
                               coded.column("vb").to_pylist())
    quality = blocks.qualities_many(ns, coded.column("qb").to_pylist())
    tag = np.asarray(coded.column("tag_id").to_numpy(), np.uint32)
    tags = np.full(len(ts), tag[0], np.uint32) if (tag == tag[0]).all() else np.repeat(tag, ns)
    if quality.min(initial=255) >= GOOD_MIN and ts[0] >= lo and ts[-1] < hi and np.isfinite(value).all():
        keep = None  # the usual case: every sample good and in the range, nothing to take
    else:
        keep = (quality >= GOOD_MIN) & np.isfinite(value) & (ts >= lo) & (ts < hi)
        tags, ts, value = tags[keep], ts[keep], value[keep]
    return pa.table([pa.array(tags), pa.array(ts), pa.array(value)], schema=SCHEMA)
