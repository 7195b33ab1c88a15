"""The historian suite's bad-input half: one bad sample never costs a batch its good ones. Unknown tag ids,
times before 1970 and far ahead of the clock are refused per sample; non-finite good values are stored bad; a
(tag, time) written again keeps the last one written, in raw and in every rollup; each counted in ``refused``."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from plantlink.errors import HistorianError
from plantlink.historian.base import Historian
from plantlink.historian.screen import FUTURE_LIMIT_US
from plantlink.samples import concat, now_us, numeric_batch
from plantlink.testing._historian_base import BAD, DAY, GOOD, T0, HistorianBase, M, S, us


class BadInputContract(HistorianBase):
    def test_a_bad_sample_is_refused_alone(self, hist: Historian) -> None:
        a, b, _ = self.ids(hist)
        unknown = max(self.ids(hist)) + 1000
        ahead = now_us() + FUTURE_LIMIT_US + DAY
        hist.write(numeric_batch([a, unknown, b, a, b], [T0, T0, T0, -5 * S, ahead], [1.0, 2.0, 3.0, 4.0, 5.0],
                                 GOOD))
        assert hist.flush() == 2 and hist.samples_stored == 2
        assert hist.raw(a, 0, T0 + DAY).column("value").to_pylist() == [1.0]
        assert hist.raw(b, 0, ahead + S).column("value").to_pylist() == [3.0]
        assert hist.refused == {"before_1970": 1, "far_future": 1, "unknown_tag": 1}
        latest = hist.latest([a, b])
        assert us(latest.column("ts")) == [T0, T0]  # the latest value never comes from a refused sample

    def test_a_batch_of_nothing_but_bad_samples_stores_nothing(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        unknown = max(self.ids(hist)) + 1000
        hist.write(numeric_batch([unknown, unknown], [T0, T0 + S], [1.0, 2.0], GOOD), 7)
        hist.flush()
        assert hist.samples_stored == 0 and hist.raw(a, T0, T0 + DAY).num_rows == 0
        assert hist.refused == {"unknown_tag": 2}

    def test_a_batch_not_in_the_schema_is_refused_whole(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        wrong = pa.RecordBatch.from_pydict({"tag_id": pa.array([a], pa.uint32()), "ts": [T0]})
        with pytest.raises(HistorianError, match="missing columns"):
            hist.write(wrong)
        hist.write(numeric_batch([a], [T0], [1.0], GOOD))
        assert hist.flush() == 1 and hist.samples_stored == 1

    def test_non_finite_values_are_stored_bad_and_left_out_of_aggregates(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        values = [1.0, math.nan, math.inf, -math.inf, 3.0]
        hist.write(numeric_batch([a] * 5, [T0 + i * S for i in range(5)], values, GOOD))
        hist.flush()
        assert hist.raw(a, T0, T0 + M).column("quality").to_pylist() == [GOOD, BAD, BAD, BAD, GOOD]
        row = hist.aggregate([a], T0, T0 + M, M, ["mean", "max", "count"]).to_pylist()[0]
        assert (row["mean"], row["max"], row["count"]) == (2.0, 3.0, 2)
        assert hist.refused == {"non_finite": 3}

    def test_a_time_written_again_keeps_the_last_in_raw_and_rollups(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        # in one batch, in one buffer across batches, and again after a flush (a late repeat of stored samples)
        hist.write(numeric_batch([a] * 3, [T0, T0 + S, T0], [1.0, 2.0, 10.0], GOOD))
        hist.write(numeric_batch([a], [T0 + S], [20.0], GOOD))
        hist.flush()
        hist.write(numeric_batch([a, a], [T0 + 2 * S, T0 + 3 * S], [30.0, 40.0], GOOD))
        hist.flush()
        hist.build_rollups(T0 + DAY)  # the hour is rolled up before the repeat arrives
        hist.write(concat([numeric_batch([a], [T0 + 2 * S], [300.0], GOOD),
                           numeric_batch([a], [T0 + 30 * S], [5.0], GOOD)]))
        hist.flush()
        t = hist.raw(a, T0, T0 + M)
        assert list(zip(us(t.column("ts")), t.column("value").to_pylist(), strict=True)) == [
            (T0, 10.0), (T0 + S, 20.0), (T0 + 2 * S, 300.0), (T0 + 3 * S, 40.0), (T0 + 30 * S, 5.0)]
        row = hist.aggregate([a], T0, T0 + M, M, ["count", "mean", "max", "first"]).to_pylist()[0]
        assert (row["count"], row["mean"], row["max"], row["first"]) == (5, 75.0, 300.0, 10.0)  # (10+20+300+40+5)/5
        hist.build_rollups(T0 + DAY)
        hour = hist.aggregate([a], T0, T0 + 60 * M, 60 * M, ["count", "mean", "max"]).to_pylist()[0]
        assert (hour["count"], hour["mean"], hour["max"]) == (5, 75.0, 300.0)
        assert hist.refused == {"duplicate": 3}
