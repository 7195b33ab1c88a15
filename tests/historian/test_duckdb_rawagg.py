"""``rawagg.combine_raw`` (sub-minute aggregates of raw rows in (tag, time) order) gives what
``aggregate.combine`` gives, bit for bit, for all 7 aggregates: gaps, empty buckets, carried-in samples,
a range cut inside buckets, rows in flush order (sorted first). The figures against numpy on the raw
samples are checked through the store in test_duckdb_subminute, test_duckdb_compaction and test_duckdb_pyramid."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from plantlink.historian.base import AGGREGATES
from plantlink.historian.duckdb.aggregate import combine
from plantlink.historian.duckdb.rawagg import combine_raw, in_order

S = 1_000_000
T0 = 1_767_225_600 * S


def _rows(rng: np.random.Generator) -> pa.Table:
    parts = []
    for tag in (3, 5, 9):
        ts = np.unique(rng.integers(T0, T0 + 3600 * S, 2000))
        ts = ts[(ts < T0 + 600 * S) | (ts > T0 + 1500 * S)]  # a 15-minute gap
        parts.append(pa.table({"tag_id": pa.array(np.full(len(ts), tag), pa.uint32()), "ts": ts,
                               "value": np.round(rng.normal(50, 10, len(ts)), 2)}))
    return pa.concat_tables(parts).combine_chunks()


# the last: one bucket, the same for all tags
@pytest.mark.parametrize("interval", [1 * S, 10 * S, 30 * S, 7 * S + 3, 1000 * 3600 * S + 7 * S])
@pytest.mark.parametrize("with_carry", [False, True])
def test_the_same_as_combine(interval: int, with_carry: bool) -> None:
    src = _rows(np.random.default_rng(interval))
    start, end = T0 + 7 * S + 123, T0 + 3000 * S + 5  # cut inside buckets
    ts = src.column("ts").to_numpy()
    src = src.filter(pa.array((ts >= start) & (ts < end)))
    carry = pa.table({"tag_id": pa.array([9, 3], pa.uint32()), "last_ts": [T0, T0 + 5], "last_v": [1.5, -2.25]}) \
        if with_carry else None
    fast = combine_raw(src, start, end, interval, AGGREGATES, carry)
    slow = combine(src, start, end, interval, AGGREGATES, carry)
    assert fast.num_rows == slow.num_rows > 0
    for name in slow.column_names:
        x, y = (np.asarray(t.column(name).to_numpy()) for t in (slow, fast))
        assert np.array_equal(x.astype(y.dtype), y, equal_nan=y.dtype.kind == "f"), name


def test_rows_out_of_order_are_put_in_order_first() -> None:
    """A day not compacted yet: one sorted run per flush (each by tag, then time)."""
    src = _rows(np.random.default_rng(1))
    ts = src.column("ts").to_numpy()
    runs = [src.filter(pa.array((ts >= lo) & (ts < lo + 900 * S))) for lo in range(T0, T0 + 3600 * S, 900 * S)]
    appended = pa.concat_tables(runs).combine_chunks()
    assert not in_order(appended.column("tag_id").to_numpy(), appended.column("ts").to_numpy())
    for interval in (10 * S, 7 * S):
        fast = combine_raw(appended, T0, T0 + 3600 * S, interval, AGGREGATES)
        slow = combine(appended, T0, T0 + 3600 * S, interval, AGGREGATES)
        assert fast.equals(slow.cast(fast.schema))


