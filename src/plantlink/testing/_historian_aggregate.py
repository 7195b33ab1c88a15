"""The historian suite's aggregate half: buckets worked out by hand, and random series against the
independent reference (``plantlink.testing.reference``)."""

from __future__ import annotations

import numpy as np
import pytest

from plantlink.historian.base import Historian
from plantlink.testing._historian_base import BAD, DAY, GOOD, T0, UNCERTAIN, HistorianBase, M, S, Sample
from plantlink.testing.reference import reference_aggregate

# One tag around T0, by hand. A value before the range is carried into the first bucket.
HAND: list[Sample] = [
    (T0 - 30 * S, 10.0, GOOD),  # before the range: carried in
    (T0 + 20 * S, 20.0, GOOD),
    (T0 + 40 * S, 999.0, BAD),  # ignored everywhere
    (T0 + 50 * S, 40.0, GOOD),
    (T0 + 60 * S, 30.0, GOOD),  # exactly on the second bucket's edge
    (T0 + 90 * S, 60.0, GOOD),
]

#: (bucket interval, range start and end offsets from T0) of the random-series comparisons
REFERENCE_RANGES = [(M, 0, 2 * DAY), (15 * M, 0, DAY), (60 * M, 7 * S, DAY + 13 * S), (7 * S, 0, 3 * M),
                    (M, -DAY, DAY // 3), (120 * M, -DAY, 2 * DAY)]  # whole hours too (a store's hourly rollups)


def random_series(rng: np.random.Generator, n: int, span: int) -> list[Sample]:
    ts = np.sort(rng.choice(span, size=n, replace=False)) + T0 - span // 4
    values = np.round(rng.normal(50, 10, n), 3)
    quality = np.where(rng.random(n) < 0.1, BAD, np.where(rng.random(n) < 0.1, UNCERTAIN, GOOD))
    return [(int(t), float(v), int(q)) for t, v, q in zip(ts, values, quality, strict=True)]


class AggregateContract(HistorianBase):
    def test_values_that_are_not_numbers_are_ignored_like_bad_ones(self, hist: Historian) -> None:
        """A stray infinity (a sample that did not pass a connector's check) must not make a bucket infinite."""
        a, b, _ = self.ids(hist)
        strays: list[Sample] = [(T0 + 45 * S, float("inf"), GOOD), (T0 + 70 * S, float("-inf"), UNCERTAIN),
                                (T0 + 80 * S, float("nan"), GOOD)]
        self.write(hist, a, HAND)
        self.write(hist, b, sorted(HAND + strays))
        hist.flush()
        for interval in (M, 30 * S):  # whole minutes and sub-minute buckets
            rows = self.agg(hist, [a, b], T0, T0 + 2 * M, interval)
            of_a = {k[1]: {**r, "tag_id": b} for k, r in rows.items() if k[0] == a}
            assert of_a and {k[1]: r for k, r in rows.items() if k[0] == b} == of_a

    @pytest.mark.parametrize("flush_between", [False, True])
    def test_minute_buckets_by_hand(self, hist: Historian, flush_between: bool) -> None:
        a = self.ids(hist)[0]
        self.write(hist, a, HAND[:3])
        if flush_between:
            hist.flush()  # a store that keeps partial rollups splits the first minute in two
        self.write(hist, a, HAND[3:])
        hist.flush()
        rows = self.agg(hist, [a], T0, T0 + 2 * M, M)
        assert sorted(rows) == [(a, T0), (a, T0 + M)]
        # bucket [T0, T0+60s): 10 carried for 20 s, 20 for 30 s, 40 for 10 s -> (200 + 600 + 400) / 60
        self.expect(rows[a, T0], twa=1200 / 60, min=20.0, max=40.0, first=20.0, last=40.0, count=2, mean=30.0)
        # bucket [T0+60s, T0+120s): 30 for 30 s, 60 for 30 s; the sample on the edge belongs here
        self.expect(rows[a, T0 + M], twa=(30 * 30 + 60 * 30) / 60, min=30.0, max=60.0, first=30.0, last=60.0,
                    count=2, mean=45.0)

    def test_twa_without_carried_value_starts_at_first_sample(self, hist: Historian) -> None:
        self.need("twa", "count")
        b = self.ids(hist)[1]
        self.write(hist, b, [(T0 + 15 * S, 4.0, GOOD), (T0 + 45 * S, 8.0, GOOD)])
        hist.flush()
        (row,) = hist.aggregate([b], T0, T0 + M, M, ["twa", "count"]).to_pylist()
        # 4 for 30 s, 8 for 15 s over the 45 s after the first sample
        assert row["twa"] == pytest.approx((4 * 30 + 8 * 15) / 45)
        assert row["count"] == 2
        assert list(row) == ["tag_id", "bucket", "twa", "count"]

    def test_bad_quality_only_bucket_is_absent_and_bad_value_not_carried(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        self.write(hist, a, [(T0 + 5 * S, 1.0, GOOD), (T0 + M + 5 * S, 100.0, BAD), (T0 + 2 * M + 30 * S, 3.0, GOOD)])
        hist.flush()
        rows = self.agg(hist, [a], T0, T0 + 3 * M, M)
        assert sorted(rows) == [(a, T0), (a, T0 + 2 * M)]
        # third bucket: 1.0 (not the bad 100) carried for 30 s, then 3.0 for 30 s
        self.expect(rows[a, T0 + 2 * M], twa=2.0, max=3.0, count=1)

    def test_sub_minute_and_unaligned_ranges_by_hand(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        self.write(hist, a, HAND)
        hist.flush()
        # 20 s buckets: [T0+40s, T0+60s) holds only 40 (the bad sample is ignored)
        rows = self.agg(hist, [a], T0, T0 + 2 * M, 20 * S)
        assert sorted(rows) == [(a, T0 + k * S) for k in (20, 40, 60, 80)]
        self.expect(rows[a, T0 + 40 * S], twa=(20 * 10 + 40 * 10) / 20, count=1)
        # an unaligned range clips the buckets: [T0+25s, T0+95s) with 1-minute buckets
        rows = self.agg(hist, [a], T0 + 25 * S, T0 + 95 * S, M)
        self.expect(rows[a, T0], count=1, twa=(20 * 25 + 40 * 10) / 35)  # only the 40 at T0+50s
        self.expect(rows[a, T0 + M], twa=(30 * 30 + 60 * 5) / 35)

    def test_buckets_are_aligned_to_epoch_multiples(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        self.write(hist, a, [(T0 + 7 * M, 1.0, GOOD)])
        hist.flush()
        assert list(self.agg(hist, [a], T0 + 6 * M, T0 + 20 * M, 5 * M)) == [(a, T0 + 5 * M)]  # not from start

    @pytest.mark.parametrize(("interval", "start_off", "end_off"), REFERENCE_RANGES)
    def test_matches_reference_across_days_and_flushes(self, hist: Historian, interval: int, start_off: int,
                                                        end_off: int) -> None:
        a = self.ids(hist)[0]
        rng = np.random.default_rng(interval % 1000 + end_off % 97)
        samples = random_series(rng, 3000, 2 * DAY)
        order = rng.permutation(len(samples))  # out-of-order arrival across flushes
        for part in np.array_split(order, 6):
            self.write(hist, a, [samples[i] for i in sorted(part)])
            hist.flush()
        start, end = T0 + start_off, T0 + end_off
        ref = reference_aggregate(samples, start, end, interval)
        got = self.agg(hist, [a], start, end, interval)
        assert sorted(got) == [(a, b) for b in sorted(ref)]
        for b, expect in ref.items():
            self.expect(got[a, b], **expect)

    def test_bucket_statistics_match_numpy(self, hist: Historian) -> None:
        """min, max, mean, first, last and count of 10-minute buckets, worked out with numpy from what was
        written (bad samples and values that are not numbers left out)."""
        a = self.ids(hist)[0]
        rng = np.random.default_rng(5)
        samples = random_series(rng, 5000, DAY)
        self.write(hist, a, samples)
        hist.flush()
        ts, v, q = (np.array([s[i] for s in samples]) for i in range(3))
        keep = (q >= UNCERTAIN) & np.isfinite(v) & (ts >= T0) & (ts < T0 + DAY)
        ts, v = ts[keep], v[keep]
        edges = np.flatnonzero(np.diff(ts // (10 * M), prepend=-1))  # first sample of each bucket (ts sorted)
        got = self.agg(hist, [a], T0, T0 + DAY, 10 * M)
        assert sorted(got) == [(a, int(b)) for b in ts[edges] // (10 * M) * (10 * M)]
        counts = np.diff(np.append(edges, len(ts)))
        lows, highs, sums = (f.reduceat(v, edges) for f in (np.minimum, np.maximum, np.add))
        for k, b in enumerate(ts[edges] // (10 * M) * (10 * M)):
            self.expect(got[a, int(b)], min=float(lows[k]), max=float(highs[k]), mean=float(sums[k] / counts[k]),
                        first=float(v[edges[k]]), last=float(v[edges[k] + counts[k] - 1]), count=int(counts[k]))

    def test_many_tags_keep_requested_order(self, hist: Historian) -> None:
        self.need("last")
        a, b, _ = self.ids(hist)
        self.write(hist, a, [(T0 + S, 1.0, GOOD)])
        self.write(hist, b, [(T0 + S, 2.0, GOOD)])
        hist.flush()
        t = hist.aggregate([b, a], T0, T0 + M, M, ["last"])
        assert t.column("tag_id").to_pylist() == [b, a]
        assert t.column("last").to_pylist() == [2.0, 1.0]

    def test_no_data_gives_empty_typed_table(self, hist: Historian) -> None:
        t = hist.aggregate([self.ids(hist)[0]], T0, T0 + M, M, list(self.aggregates))  # type: ignore[arg-type]
        assert t.num_rows == 0
        assert t.schema.names == ["tag_id", "bucket", *self.aggregates]
