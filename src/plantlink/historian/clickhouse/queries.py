"""The ClickHouse historian's queries. Samples are read ``FINAL`` (a (tag, time) written again: the last
one), and bad samples (quality below 64, or no finite value) are left out after that, never before.

Aggregates and rollups share one idea: a *segment* is a run of good samples of one tag (a single sample in
``raw``, a minute in ``r1m``, an hour in ``r1h``) with its count, sum, min, max, first and last sample and
``integral``, the step integral of its value from its first to its last sample. Buckets combine segments in
time order: the time from a segment's last sample to the next segment's first is ``last_v`` times that gap,
and a bucket's first stretch takes the value of the segment before it (the last good value carried in).
"""

from __future__ import annotations

from collections.abc import Sequence

from plantlink.historian.clickhouse.schema import HOUR_US, MINUTE_US, Layout

GOOD = "quality >= 64 AND value IS NOT NULL AND isFinite(value)"


def ts_lit(us: int) -> str:
    return f"fromUnixTimestamp64Micro(toInt64({int(us)}), 'UTC')"


def ids_lit(ids: Sequence[int]) -> str:
    return "(" + ",".join(str(int(i)) for i in ids) + ")"


def _value(table: str) -> str:
    return "text AS value" if table == "texts" else "value"


def raw(lay: Layout, table: str, tag_id: int, start_us: int, end_us: int, limit: int) -> str:
    return (f"SELECT ts, {_value(table)}, quality FROM {lay.t(table)} FINAL WHERE tag_id = {int(tag_id)} "
            f"AND ts >= {ts_lit(start_us)} AND ts < {ts_lit(end_us)} ORDER BY ts LIMIT {int(limit)}")


def raw_many(lay: Layout, ids: Sequence[int], start_us: int, end_us: int, limit: int) -> str:
    return (f"SELECT tag_id, ts, value, quality FROM {lay.t('raw')} FINAL WHERE tag_id IN {ids_lit(ids)} "
            f"AND ts >= {ts_lit(start_us)} AND ts < {ts_lit(end_us)} ORDER BY tag_id, ts "
            f"LIMIT {int(limit)} BY tag_id")


def last_before(lay: Layout, table: str, tag_id: int, before_us: int) -> str:
    return (f"SELECT ts, {_value(table)}, quality FROM {lay.t(table)} FINAL WHERE tag_id = {int(tag_id)} "
            f"AND ts < {ts_lit(before_us)} ORDER BY ts DESC LIMIT 1")


def series(lay: Layout, tag_id: int, start_us: int, end_us: int) -> str:
    """Good samples of one tag in time order (``ts`` as integer microseconds)."""
    return (f"SELECT toUnixTimestamp64Micro(ts) AS ts, assumeNotNull(value) AS value FROM ("
            f"SELECT ts, value, quality FROM {lay.t('raw')} FINAL WHERE tag_id = {int(tag_id)} "
            f"AND ts >= {ts_lit(start_us)} AND ts < {ts_lit(end_us)}) WHERE {GOOD} ORDER BY ts")


def _raw_segments(lay: Layout, where: str) -> str:
    """Good raw samples as segments of one sample (``where``: key-column conditions, applied before FINAL)."""
    return (f"SELECT tag_id, toUnixTimestamp64Micro(ts) AS first_ts, assumeNotNull(value) AS first_v, "
            f"first_ts AS last_ts, first_v AS last_v, toFloat64(0) AS integral, toUInt32(1) AS cnt, "
            f"first_v AS total, first_v AS mn, first_v AS mx FROM ("
            f"SELECT tag_id, ts, value, quality FROM {lay.t('raw')} FINAL WHERE {where}) WHERE {GOOD}")


def _rollup_segments(lay: Layout, table: str, where: str) -> str:
    return (f"SELECT tag_id, first_ts, first_v, last_ts, last_v, integral, cnt, total, mn, mx "
            f"FROM {lay.t(table)} FINAL WHERE {where} AND cnt > 0")


def source_of(interval_us: int, start_us: int, end_us: int) -> str:
    """The coarsest store whose buckets tile the query: ``r1h``, ``r1m`` or ``raw``."""
    for table, width in (("r1h", HOUR_US), ("r1m", MINUTE_US)):
        if interval_us % width == 0 and start_us % width == 0 and end_us % width == 0:
            return table
    return "raw"


def segments(lay: Layout, source: str, ids: Sequence[int], start_us: int, end_us: int) -> str:
    tags = f"tag_id IN {ids_lit(ids)}"
    if source == "raw":
        return _raw_segments(lay, f"{tags} AND ts >= {ts_lit(start_us)} AND ts < {ts_lit(end_us)}")
    return _rollup_segments(lay, source, f"{tags} AND bucket >= {start_us} AND bucket < {end_us}")


def carried(lay: Layout, ids: Sequence[int], start_us: int) -> str:
    """Per tag, the last good sample before ``start_us``: whole minutes from ``r1m``, the rest from raw."""
    floor = start_us - start_us % MINUTE_US
    tags = f"tag_id IN {ids_lit(ids)}"
    parts = [f"SELECT tag_id, last_ts, last_v FROM ({_rollup_segments(lay, 'r1m', f'{tags} AND bucket < {floor}')})"]
    if floor < start_us:
        where = f"{tags} AND ts >= {ts_lit(floor)} AND ts < {ts_lit(start_us)}"
        parts.append(f"SELECT tag_id, last_ts, last_v FROM ({_raw_segments(lay, where)})")
    union = " UNION ALL ".join(parts)
    return (f"SELECT tag_id, max(last_ts) AS first_ts, argMax(last_v, last_ts) AS first_v, first_ts AS last_ts, "
            f"first_v AS last_v, toFloat64(0) AS integral, toUInt32(0) AS cnt, toFloat64(0) AS total, "
            f"toFloat64(0) AS mn, toFloat64(0) AS mx FROM ({union}) GROUP BY tag_id")


_COLUMNS = {
    "min": "min(mn)", "max": "max(mx)", "mean": "sum(total) / sum(cnt)", "count": "toInt64(sum(cnt))",
    "first": "argMin(first_v, first_ts)", "last": "argMax(last_v, last_ts)",
    "twa": "(sum(integral + last_v * (least(ifNull(next_ts, bend), bend) - last_ts)) "
           "+ sumIf(ifNull(prev_v, 0) * (first_ts - bstart), head)) "
           "/ (max(bend) - if(maxIf(prev_v IS NOT NULL, head), max(bstart), min(first_ts)))",
}


def aggregate(lay: Layout, ids: Sequence[int], start_us: int, end_us: int, interval_us: int,
              aggregates: Sequence[str]) -> str:
    """One row per tag and bucket with at least one good sample; ``bucket`` as integer microseconds."""
    source = source_of(interval_us, start_us, end_us)
    iv = int(interval_us)
    cols = ", ".join(f"{_COLUMNS[a]} AS `{a}`" for a in aggregates)
    if "twa" not in aggregates:  # no carried value, no neighbours: one GROUP BY
        return (f"SELECT tag_id, intDiv(first_ts, {iv}) * {iv} AS bucket, {cols} "
                f"FROM ({segments(lay, source, ids, start_us, end_us)}) "
                "GROUP BY tag_id, bucket ORDER BY tag_id, bucket")
    seg = (f"SELECT *, 0 AS carry FROM ({segments(lay, source, ids, start_us, end_us)}) "
           f"UNION ALL SELECT *, 1 AS carry FROM ({carried(lay, ids, start_us)})")
    win = "(PARTITION BY tag_id ORDER BY first_ts, carry DESC ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    ordered = (
        f"SELECT *, intDiv(first_ts, {iv}) * {iv} AS bucket, greatest(bucket, {int(start_us)}) AS bstart, "
        f"least(bucket + {iv}, {int(end_us)}) AS bend, "
        f"lagInFrame(toNullable(last_v)) OVER w AS prev_v, "
        f"lagInFrame(toNullable(if(carry = 1, -1, bucket))) OVER w AS prev_bucket, "
        f"leadInFrame(toNullable(first_ts)) OVER w AS next_ts, "
        f"ifNull(prev_bucket, -2) != bucket AS head FROM ({seg}) WINDOW w AS {win}"
    )
    return (f"SELECT tag_id, bucket, {cols} FROM ({ordered}) WHERE carry = 0 GROUP BY tag_id, bucket "
            f"ORDER BY tag_id, bucket")


def rebuild(lay: Layout, target: str, ids: Sequence[int], lo_us: int, hi_us: int, version: int) -> str:
    """``INSERT`` the ``target`` rollup (``r1m`` from raw, ``r1h`` from ``r1m``) for the buckets of ``ids`` in
    ``[lo_us, hi_us)`` (bucket-aligned), every row at ``version``. A bucket's integral: its segments' own,
    plus each segment's last value held until the next segment's first sample (the segments in time order)."""
    width = MINUTE_US if target == "r1m" else HOUR_US
    tags = f"tag_id IN {ids_lit(ids)}"
    if target == "r1m":
        src = _raw_segments(lay, f"{tags} AND ts >= {ts_lit(lo_us)} AND ts < {ts_lit(hi_us)}")
    else:
        src = _rollup_segments(lay, "r1m", f"{tags} AND bucket >= {lo_us} AND bucket < {hi_us}")
    seg = "(arraySort(groupArray((first_ts, last_ts, last_v))) AS seg)"
    held = f"arraySum(arrayMap((a, b) -> a.3 * (b.1 - a.2), arrayPopBack({seg}), arrayPopFront(seg)))"
    return (f"INSERT INTO {lay.t(target)} SELECT tag_id, intDiv(first_ts, {width}) * {width} AS bucket, "
            f"sum(cnt), sum(total), min(mn), max(mx), min(first_ts), argMin(first_v, first_ts), max(last_ts), "
            f"argMax(last_v, last_ts), sum(integral) + {held}, toUInt64({int(version)}) FROM ({src}) "
            f"GROUP BY tag_id, bucket")
