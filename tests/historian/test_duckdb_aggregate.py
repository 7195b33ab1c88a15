"""Aggregates of the DuckDB historian against values worked out by hand and against a plain-Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, M, S
from tests.historian.reference import Sample, reference_aggregate

GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)


def rows_by_bucket(table, tag_id: int) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    out = {}
    for row in table.to_pylist():
        if row["tag_id"] == tag_id:
            b = int(row["bucket"].timestamp() * 1_000_000)
            out[b] = row
    return out


def write(h: DuckDBHistorian, tag: int, samples: list[Sample]) -> None:
    ts = [s[0] for s in samples]
    h.write(numeric_batch([tag] * len(samples), ts, [s[1] for s in samples], [s[2] for s in samples]))


# Tag 1 around T0, by hand. A value before the range is carried into the first bucket.
HAND: list[Sample] = [
    (T0 - 30 * S, 10.0, GOOD),  # before the range: carried in
    (T0 + 20 * S, 20.0, GOOD),
    (T0 + 40 * S, 999.0, BAD),  # ignored everywhere
    (T0 + 50 * S, 40.0, GOOD),
    (T0 + 60 * S, 30.0, GOOD),  # exactly on the second bucket's edge
    (T0 + 90 * S, 60.0, GOOD),
]


def test_values_that_are_not_numbers_are_ignored_like_bad_ones(hist: DuckDBHistorian) -> None:
    """A stray infinity (a sample that did not pass a connector's check) must not make a bucket infinite."""
    strays: list[Sample] = [(T0 + 45 * S, float("inf"), GOOD), (T0 + 70 * S, float("-inf"), int(Quality.UNCERTAIN)),
                            (T0 + 80 * S, float("nan"), GOOD)]
    write(hist, 1, HAND)
    write(hist, 2, sorted(HAND + strays))
    hist.flush()
    for interval in (M, 30 * S):  # rollups and raw samples
        t = hist.aggregate([1, 2], T0, T0 + 2 * M, interval)
        assert rows_by_bucket(t, 2) == {b: {**r, "tag_id": 2} for b, r in rows_by_bucket(t, 1).items()}


@pytest.mark.parametrize("flush_between", [False, True])
def test_minute_buckets_by_hand(hist: DuckDBHistorian, flush_between: bool) -> None:
    write(hist, 1, HAND[:3])
    if flush_between:
        hist.flush()  # splits the first minute into two partial rollups
    write(hist, 1, HAND[3:])
    hist.flush()
    t = hist.aggregate([1], T0, T0 + 2 * M, M)
    rows = rows_by_bucket(t, 1)
    assert sorted(rows) == [T0, T0 + M]
    a, b = rows[T0], rows[T0 + M]
    # bucket [T0, T0+60s): 10 carried for 20 s, 20 for 30 s, 40 for 10 s -> (200 + 600 + 400) / 60
    assert a["twa"] == pytest.approx(1200 / 60)
    assert (a["min"], a["max"], a["first"], a["last"], a["count"]) == (20.0, 40.0, 20.0, 40.0, 2)
    assert a["mean"] == pytest.approx(30.0)
    # bucket [T0+60s, T0+120s): 30 for 30 s, 60 for 30 s; the sample on the edge belongs here
    assert b["twa"] == pytest.approx((30 * 30 + 60 * 30) / 60)
    assert (b["min"], b["max"], b["first"], b["last"], b["count"]) == (30.0, 60.0, 30.0, 60.0, 2)


def test_twa_without_carried_value_starts_at_first_sample(hist: DuckDBHistorian) -> None:
    write(hist, 2, [(T0 + 15 * S, 4.0, GOOD), (T0 + 45 * S, 8.0, GOOD)])
    hist.flush()
    (row,) = hist.aggregate([2], T0, T0 + M, M, ["twa", "count"]).to_pylist()
    # 4 for 30 s, 8 for 15 s over the 45 s after the first sample
    assert row["twa"] == pytest.approx((4 * 30 + 8 * 15) / 45)
    assert row["count"] == 2
    assert list(row) == ["tag_id", "bucket", "twa", "count"]


def test_bad_quality_only_bucket_is_absent_and_bad_value_not_carried(hist: DuckDBHistorian) -> None:
    write(hist, 1, [(T0 + 5 * S, 1.0, GOOD), (T0 + M + 5 * S, 100.0, BAD), (T0 + 2 * M + 30 * S, 3.0, GOOD)])
    hist.flush()
    rows = rows_by_bucket(hist.aggregate([1], T0, T0 + 3 * M, M), 1)
    assert sorted(rows) == [T0, T0 + 2 * M]
    # third bucket: 1.0 (not the bad 100) carried for 30 s, then 3.0 for 30 s
    assert rows[T0 + 2 * M]["twa"] == pytest.approx(2.0)
    assert rows[T0 + 2 * M]["max"] == 3.0


def test_sub_minute_and_unaligned_ranges_by_hand(hist: DuckDBHistorian) -> None:
    write(hist, 1, HAND)
    hist.flush()
    # 20 s buckets read raw data: [T0+40s, T0+60s) holds only 40 (the bad sample is ignored)
    rows = rows_by_bucket(hist.aggregate([1], T0, T0 + 2 * M, 20 * S), 1)
    assert sorted(rows) == [T0 + 20 * S, T0 + 40 * S, T0 + 60 * S, T0 + 80 * S]
    assert rows[T0 + 40 * S]["twa"] == pytest.approx((20 * 10 + 40 * 10) / 20)
    # an unaligned range clips the buckets: [T0+25s, T0+95s) with 1-minute buckets
    rows = rows_by_bucket(hist.aggregate([1], T0 + 25 * S, T0 + 95 * S, M), 1)
    assert rows[T0]["count"] == 1  # only the 40 at T0+50s
    assert rows[T0]["twa"] == pytest.approx((20 * 25 + 40 * 10) / 35)
    assert rows[T0 + M]["twa"] == pytest.approx((30 * 30 + 60 * 5) / 35)


def test_buckets_are_aligned_to_epoch_multiples(hist: DuckDBHistorian) -> None:
    write(hist, 1, [(T0 + 7 * M, 1.0, GOOD)])
    hist.flush()
    (row,) = hist.aggregate([1], T0 + 6 * M, T0 + 20 * M, 5 * M).to_pylist()
    assert int(row["bucket"].timestamp()) * S == T0 + 5 * M  # 5-minute multiples since 1970, not from start


def random_series(rng: np.random.Generator, n: int, span: int) -> list[Sample]:
    ts = np.sort(rng.choice(span, size=n, replace=False)) + T0 - span // 4
    values = np.round(rng.normal(50, 10, n), 3)
    quality = np.where(rng.random(n) < 0.1, BAD, np.where(rng.random(n) < 0.1, 64, GOOD))
    return [(int(t), float(v), int(q)) for t, v, q in zip(ts, values, quality, strict=True)]


@pytest.mark.parametrize(
    ("interval", "start_off", "end_off"),
    [(M, 0, 2 * DAY), (15 * M, 0, DAY), (60 * M, 7 * S, DAY + 13 * S), (7 * S, 0, 3 * M), (M, -DAY, DAY // 3)],
)
def test_matches_reference_across_days_and_flushes(
    hist: DuckDBHistorian, interval: int, start_off: int, end_off: int
) -> None:
    rng = np.random.default_rng(interval % 1000 + end_off % 97)
    samples = random_series(rng, 3000, 2 * DAY)
    order = rng.permutation(len(samples))  # out-of-order arrival across flushes
    for part in np.array_split(order, 6):
        write(hist, 1, [samples[i] for i in sorted(part)])
        hist.flush()
    start, end = T0 + start_off, T0 + end_off
    ref = reference_aggregate(samples, start, end, interval)
    got = rows_by_bucket(hist.aggregate([1], start, end, interval), 1)
    assert sorted(got) == sorted(ref)
    for b, expect in ref.items():
        for name, value in expect.items():
            assert got[b][name] == pytest.approx(value, rel=1e-9), (b, name)


def test_many_tags_keep_requested_order(hist: DuckDBHistorian) -> None:
    write(hist, 1, [(T0 + S, 1.0, GOOD)])
    write(hist, 2, [(T0 + S, 2.0, GOOD)])
    hist.flush()
    t = hist.aggregate([2, 1], T0, T0 + M, M, ["last"])
    assert t.column("tag_id").to_pylist() == [2, 1]
    assert t.column("last").to_pylist() == [2.0, 1.0]


def test_no_data_gives_empty_typed_table(hist: DuckDBHistorian) -> None:
    t = hist.aggregate([1], T0, T0 + M, M)
    assert t.num_rows == 0
    assert t.schema.names == ["tag_id", "bucket", "min", "max", "mean", "twa", "first", "last", "count"]
