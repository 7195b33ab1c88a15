"""One-minute rollups: partial aggregates per (tag, minute) computed with numpy from a sorted chunk.

A partial row holds ``n``, ``vmin``, ``vmax``, ``vsum``, first/last sample (ts and value) and ``integ``, the
step-interpolated integral between its own samples (value x microseconds, the stretch after its last sample
excluded). Several partial rows of one minute may exist (a minute cut by a flush); they never overlap in
time because out-of-order writes make the store recompute the affected minutes from raw data. Raw samples are
partial rows too (``n = 1``, ``integ = 0``), so one query combines either (see ``queries``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from plantlink.historian.duckdb.layout import GOOD_MIN, MINUTE_US, R1M_NAMES

R1M_SCHEMA = pa.schema(
    [
        ("tag_id", pa.uint32()),
        ("bucket", pa.int64()),
        ("n", pa.uint32()),
        ("vmin", pa.float64()),
        ("vmax", pa.float64()),
        ("vsum", pa.float64()),
        ("first_ts", pa.int64()),
        ("first_v", pa.float64()),
        ("last_ts", pa.int64()),
        ("last_v", pa.float64()),
        ("integ", pa.float64()),
    ]
)
assert tuple(R1M_SCHEMA.names) == R1M_NAMES


def good_mask(value: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Samples aggregates use: good or uncertain, with a finite value (a stray infinity would make every
    sum and mean of its bucket infinite)."""
    mask: np.ndarray = (quality >= GOOD_MIN) & np.isfinite(value)
    return mask


def partials(tag: np.ndarray, ts: np.ndarray, value: np.ndarray, quality: np.ndarray) -> pa.Table:
    """Per-(tag, minute) partial aggregates of samples sorted by (tag, ts); bad samples are skipped."""
    good = good_mask(value, quality)
    if not good.any():
        return R1M_SCHEMA.empty_table()
    cols = fold(tag[good], ts[good], value[good], MINUTE_US)
    return pa.Table.from_arrays([pa.array(cols[name]) for name in R1M_NAMES], schema=R1M_SCHEMA)


def fold(tag: np.ndarray, ts: np.ndarray, value: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """The partial rows (columns ``R1M_NAMES``) of good samples sorted by (tag, ts), one per tag and bucket of
    ``width`` us (the minutes; the buckets of an aggregate whose marked tags' raw samples it folds itself)."""
    n = len(tag)
    bucket = ts - ts % width
    new = np.ones(n, dtype=bool)
    new[1:] = (tag[1:] != tag[:-1]) | (bucket[1:] != bucket[:-1])
    starts = np.flatnonzero(new)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = n - 1
    step = np.zeros(n, dtype=np.float64)
    step[:-1] = value[:-1] * np.diff(ts)
    step[ends] = 0.0  # the stretch after a partial's last sample belongs to whatever follows
    return {
        "tag_id": tag[starts],
        "bucket": bucket[starts],
        "n": (ends - starts + 1).astype(np.uint32),
        "vmin": np.minimum.reduceat(value, starts),
        "vmax": np.maximum.reduceat(value, starts),
        "vsum": np.add.reduceat(value, starts),
        "first_ts": ts[starts],
        "first_v": value[starts],
        "last_ts": ts[ends],
        "last_v": value[ends],
        "integ": np.add.reduceat(step, starts),
    }
