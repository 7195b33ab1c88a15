"""The historian suite's storage half: raw ranges, latest, persistence across a reopen, ids, text,
downsampling, retention, the write-ahead-log position and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pytest

from plantlink.errors import QueryError
from plantlink.historian.base import Historian, Retention, TagMeta
from plantlink.samples import concat, numeric_batch, text_batch
from plantlink.testing._historian_base import BAD, DAY, GOOD, T0, HistorianBase, M, S, us

_Call = Callable[[Historian, int, int], object]

#: (call(historian, a known tag id, an unknown one), the field its QueryError names)
BAD_QUERIES: list[tuple[_Call, str]] = [
    (lambda h, k, u: h.raw(u, T0, T0 + S), "tag_id"),
    (lambda h, k, u: h.latest([k, u]), "tag_ids"),
    (lambda h, k, u: h.aggregate([k, u], T0, T0 + M, M), "tag_ids"),
    (lambda h, k, u: h.raw(k, T0 + S, T0), "end_us"),
    (lambda h, k, u: h.aggregate([k], T0, T0, M), "end_us"),
    (lambda h, k, u: h.aggregate([k], T0, T0 + M, 0), "interval_us"),
    (lambda h, k, u: h.aggregate([k], T0, T0 + M, -5), "interval_us"),
    (lambda h, k, u: h.aggregate([k], T0, T0 + M, M, ["median"]), "aggregates"),  # type: ignore[list-item]
    (lambda h, k, u: h.downsample(k, T0, T0 + M, n_out=2), "n_out"),
    (lambda h, k, u: h.downsample(u, T0, T0 + M), "tag_id"),
]


class StorageContract(HistorianBase):
    def test_raw_is_half_open_ordered_and_limited(self, hist: Historian) -> None:
        a, b, _ = self.ids(hist)
        ts = [T0 + 3 * S, T0 + 1 * S, T0 + 2 * S, T0 + 4 * S, T0 + DAY + S]  # out of order, across a day
        hist.write(numeric_batch([a] * 5, ts, [3.0, 1.0, 2.0, 4.0, 5.0], [GOOD, GOOD, BAD, GOOD, GOOD]))
        hist.flush()
        t = hist.raw(a, T0 + S, T0 + 4 * S)
        assert us(t.column("ts")) == [T0 + S, T0 + 2 * S, T0 + 3 * S]  # end excluded, start included
        assert t.column("value").to_pylist() == [1.0, 2.0, 3.0]
        assert t.column("quality").to_pylist() == [GOOD, BAD, GOOD]  # raw keeps every quality
        assert us(hist.raw(a, T0, T0 + 2 * DAY, limit=2).column("ts")) == [T0 + S, T0 + 2 * S]
        assert us(hist.raw(a, T0 + 4 * S, T0 + 2 * DAY).column("ts")) == [T0 + 4 * S, T0 + DAY + S]
        assert hist.raw(b, T0, T0 + DAY).num_rows == 0

    def test_last_before_is_the_last_sample_however_old(self, hist: Historian) -> None:
        a, b, _ = self.ids(hist)
        ts = [T0 - 40 * DAY, T0 + 5 * S, T0 + 3 * S, T0 + 30 * DAY]  # out of order, weeks apart
        hist.write(numeric_batch([a] * 4, ts, [1.0, 3.0, 2.0, 4.0], [GOOD, BAD, GOOD, GOOD]))
        hist.flush()

        def last(before: int) -> list[tuple[int, float, int]]:
            t = hist.last_before(a, before)
            return list(zip(us(t.column("ts")), t.column("value").to_pylist(), t.column("quality").to_pylist(),
                            strict=True))

        assert last(T0 + 30 * DAY + 1) == [(T0 + 30 * DAY, 4.0, GOOD)]
        assert last(T0 + 30 * DAY) == [(T0 + 5 * S, 3.0, BAD)]  # 30 days back, a bad sample as it is
        assert last(T0 + 5 * S) == [(T0 + 3 * S, 2.0, GOOD)]  # before: strictly
        assert last(T0 + 3 * S) == [(T0 - 40 * DAY, 1.0, GOOD)]  # 40 days back
        assert last(T0 - 40 * DAY) == [] and hist.last_before(b, T0 + 30 * DAY).num_rows == 0

    def test_raw_many_equals_raw_tag_by_tag(self, hist: Historian) -> None:
        a, b, text = self.ids(hist)
        c = hist.register_tags([TagMeta("line1/m1/empty")])["line1/m1/empty"]
        rng = np.random.default_rng(7)
        for tag, n in ((a, 50), (b, 7), (c, 0)):
            ts = (T0 + rng.permutation(n * 3)[:n] * (DAY // 40)).tolist()  # out of order, over days
            if n:
                hist.write(numeric_batch([tag] * n, ts, rng.normal(size=n).tolist(),
                                         rng.choice([GOOD, BAD], size=n).tolist()))
        hist.flush()
        start, end = T0 + S, T0 + 3 * DAY
        for limit in (100_000, 20, 5):  # none cut; one tag cut (57 rows in all); all cut
            many = hist.raw_many([c, b, a, b], start, end, limit)
            assert many.column_names == ["tag_id", "ts", "value", "quality"]
            for tag in (a, b, c):  # by tag id then time: each tag's rows are its raw read, limit per tag
                mine = many.filter(pa.compute.equal(many.column("tag_id"), tag))
                one = hist.raw(tag, start, end, limit)
                assert us(mine.column("ts")) == us(one.column("ts"))
                assert mine.column("value").to_pylist() == one.column("value").to_pylist()
                assert mine.column("quality").to_pylist() == one.column("quality").to_pylist()
            assert many.column("tag_id").to_pylist() == sorted(many.column("tag_id").to_pylist())
            assert many.equals(Historian.raw_many(hist, [a, b, c], start, end, limit))  # the interface's default
        assert hist.raw_many([c], start, end).num_rows == 0
        with pytest.raises(QueryError):
            hist.raw_many([a, 10_000], start, end)
        if self.text_tags:
            with pytest.raises(QueryError, match="text"):
                hist.raw_many([a, text], start, end)

    def test_latest_across_flushes_and_reopen(self, location: Path) -> None:
        with self.opened(location) as h:
            ids = h.register_tags([TagMeta("a"), TagMeta("b"), TagMeta("c")])
            a, b, c = ids["a"], ids["b"], ids["c"]
            h.write(numeric_batch([a, b, a], [T0 + 2 * S, T0, T0 + S], [2.0, 7.0, 1.0], GOOD))
            h.flush()
            h.write(numeric_batch([b], [T0 - S], [6.0], GOOD))  # older than what b has, but it arrived last
            h.write(numeric_batch([a], [T0 + 5 * S], [9.0], BAD))  # not flushed; bad still counts as latest
            before = h.latest([c, b, a]).to_pylist()
            assert [r["tag_id"] for r in before] == [c, b, a]
            assert before[0]["ts"] is None and before[0]["value"] is None
            assert (before[1]["value"], before[2]["value"], before[2]["quality"]) == (6.0, 9.0, BAD)
        with self.opened(location) as h2:
            # the latest values are kept: b's older sample that arrived last is still its latest after a reopen
            after = h2.latest([c, b, a])
            assert after.to_pylist() == before
            assert (after.column("value")[1].as_py(), us(after.column("ts"))[1]) == (6.0, T0 - S)
            assert h2.raw(a, T0, T0 + DAY).column("value").to_pylist() == [1.0, 2.0, 9.0]
            assert h2.raw(b, T0 - DAY, T0 + DAY).num_rows == 2

    def test_latest_is_the_last_to_arrive_whatever_its_timestamp(self, hist: Historian) -> None:
        """A sample stamped far ahead must not hide the ones that follow it; the last row of the last write
        wins."""
        a, b, _ = self.ids(hist)
        year_2099 = 4_070_908_800 * S
        hist.write(numeric_batch([a, a, b], [year_2099, T0, T0 + S], [99.0, 1.0, 5.0], GOOD))  # within one write
        assert hist.latest([a, b]).column("value").to_pylist() == [1.0, 5.0]
        hist.write(numeric_batch([a], [year_2099], [99.0], GOOD))
        hist.write(numeric_batch([a], [T0 + 2 * S], [2.0], GOOD))  # across writes
        latest = hist.latest([a])
        assert latest.column("value").to_pylist() == [2.0] and us(latest.column("ts")) == [T0 + 2 * S]
        hist.flush()
        assert hist.raw(a, T0, T0 + DAY).column("value").to_pylist() == [1.0, 2.0]  # history keeps everything

    def test_latest_keeps_why_a_value_is_not_a_number(self, location: Path) -> None:
        """NaN and the infinities stay as stored; a sample without a value is null, before and after a reopen."""
        values = [float("nan"), float("inf"), float("-inf"), 0.0, 1.5]
        missing = np.array([False] * 3 + [True, False])
        with self.opened(location) as h:
            ids = list(h.register_tags([TagMeta(n) for n in ("nan", "pinf", "ninf", "none", "num")]).values())
            h.write(numeric_batch(ids, T0, values, [BAD] * 4 + [GOOD], missing=missing))
            self._check_not_numbers(h.latest(ids).column("value").to_pylist())
        with self.opened(location) as h:
            self._check_not_numbers(h.latest(ids).column("value").to_pylist())

    @staticmethod
    def _check_not_numbers(got: list[float | None]) -> None:
        assert got[0] is not None and np.isnan(got[0])
        assert got[1:3] == [float("inf"), float("-inf")] and got[3:] == [None, 1.5]

    def test_every_sample_written_before_close_is_there_after_reopen(self, location: Path) -> None:
        rng = np.random.default_rng(1)
        ts = T0 + np.sort(rng.choice(3 * DAY // S, size=2500, replace=False)) * S
        values = rng.normal(size=2500)
        with self.opened(location) as h:
            (tag,) = h.register_tags([TagMeta("x")]).values()
            for i, part in enumerate(np.array_split(np.arange(2500), 7)):  # flushed parts and an unflushed tail
                h.write(numeric_batch(np.full(len(part), tag), ts[part], values[part], GOOD))
                if i % 2:
                    h.flush()
        with self.opened(location) as h2:
            t = h2.raw(tag, T0, T0 + 4 * DAY)
            assert us(t.column("ts")) == ts.tolist()
            assert np.array_equal(t.column("value").to_numpy(), values)
            if "count" in self.aggregates:
                counts = h2.aggregate([tag], T0, T0 + 4 * DAY, DAY, ["count"]).column("count").to_pylist()
                assert counts == [int(np.sum((ts >= T0 + d * DAY) & (ts < T0 + (d + 1) * DAY))) for d in range(3)]

    def test_ids_are_stable_across_reopen(self, location: Path) -> None:
        with self.opened(location) as h:
            first = h.register_tags([TagMeta("p/1", "bar"), TagMeta("p/2")])
        with self.opened(location) as h:
            again = h.register_tags([TagMeta("p/3"), TagMeta("p/2"), TagMeta("p/1")])
            assert again["p/1"] == first["p/1"] and again["p/2"] == first["p/2"]
            assert again["p/3"] not in first.values()
            tags = h.tags()
            assert sorted((r["path"], r["unit"], r["tag_id"]) for r in tags.to_pylist()) == [
                ("p/1", "bar", first["p/1"]), ("p/2", "", first["p/2"]), ("p/3", "", again["p/3"])]
            assert tags.schema.field("tag_id").type == pa.uint32()

    def test_text_tags(self, location: Path) -> None:
        if not self.text_tags:
            pytest.skip("the backend stores no text tags")
        with self.opened(location) as h:
            num, _, txt = self.ids(h)
            h.write(text_batch([txt, txt], [T0 + S, T0 + 2 * S], ["RUN", "STOP"], GOOD))
            h.write(numeric_batch([num], [T0], [1.5], GOOD))
            row1, row3 = h.latest([num, txt]).to_pylist()
            assert (row3["text"], row3["value"], row1["text"], row1["value"]) == ("STOP", None, None, 1.5)
            h.flush()
            assert h.raw(txt, T0, T0 + M).column("value").to_pylist() == ["RUN", "STOP"]
        with self.opened(location) as h2:
            assert h2.latest([txt]).column("text").to_pylist() == ["STOP"]

    def test_a_batch_of_numbers_and_text_alike(self, location: Path) -> None:
        if not self.text_tags:
            pytest.skip("the backend stores no text tags")
        with self.opened(location) as h:
            num, _, txt = self.ids(h)
            h.write(concat([numeric_batch([num, num], [T0, T0 + S], [1.0, 2.0], GOOD),
                            text_batch([txt], [T0 + S], ["RUN"], GOOD)]))
            assert h.latest([num, txt]).select(["value", "text"]).to_pydict() == {
                "value": [2.0, None], "text": [None, "RUN"]}
            h.flush()
            assert h.raw(num, T0, T0 + M).column("value").to_pylist() == [1.0, 2.0]
            assert h.raw(txt, T0, T0 + M).column("value").to_pylist() == ["RUN"]

    def test_downsample_keeps_extremes_within_n_out(self, hist: Historian) -> None:
        a = self.ids(hist)[0]
        n = 50_000
        ts = T0 + np.arange(n, dtype=np.int64) * S
        rng = np.random.default_rng(7)
        values = np.sin(np.arange(n) / 500) + rng.normal(0, 0.1, n)
        values[12_345], values[40_001] = 9.0, -9.0
        quality = np.full(n, GOOD)
        quality[777] = BAD
        values[777] = 100.0  # bad: must not show up as the maximum
        half = n // 2  # the later half written first: the store holds them out of time order
        for part in (slice(half, n), slice(0, half)):
            hist.write(numeric_batch(np.full(len(ts[part]), a), ts[part], values[part], quality[part]))
            hist.flush()
        t = hist.downsample(a, T0, T0 + n * S, n_out=200)
        got_ts, got_v = us(t.column("ts")), t.column("value").to_numpy()
        assert 100 < len(got_ts) <= 200
        assert got_ts == sorted(got_ts)
        assert got_v.max() == 9.0 and got_v.min() == -9.0
        assert T0 + 12_345 * S in got_ts and T0 + 40_001 * S in got_ts
        small = hist.downsample(a, T0 + (half - 5) * S, T0 + (half + 5) * S, n_out=200)
        assert us(small.column("ts")) == (T0 + np.arange(half - 5, half + 5) * S).tolist()
        assert small.column("value").to_numpy().tolist() == values[half - 5:half + 5].tolist()

    def test_retention_drops_old_raw_and_keeps_rollups(self, location: Path) -> None:
        with self.opened(location, Retention(raw=2 * 86400.0, rollup_1m=None)) as h:
            (tag,) = h.register_tags([TagMeta("r")]).values()
            ts = T0 + np.arange(4 * 24, dtype=np.int64) * 3600 * S  # hourly over 4 days
            h.write(numeric_batch(np.full(len(ts), tag), ts, np.arange(len(ts), dtype=float), GOOD))
            h.flush()
            now = T0 + 3 * DAY + 12 * 3600 * S  # cutoff T0 + 1.5 days
            assert h.apply_retention(now) == 36  # 24 + 12 hourly samples older than the cutoff
            assert us(h.raw(tag, T0, T0 + 4 * DAY, limit=1).column("ts")) == [T0 + 36 * 3600 * S]
            # the 1-minute rollups are kept forever: hourly buckets are still there for the first day
            assert h.aggregate([tag], T0, T0 + DAY, 3600 * S, ["count"]).num_rows == 24
            assert h.apply_retention(now) == 0

    def test_durable_seq_follows_flushes_and_survives_reopen(self, location: Path) -> None:
        with self.opened(location) as h:
            assert h.durable_seq == 0
            (tag,) = h.register_tags([TagMeta("w")]).values()
            h.write(numeric_batch([tag], [T0], [1.0], GOOD), 4)
            h.write(numeric_batch([tag], [T0 + S], [2.0], GOOD), 5)
            assert h.flush() == 2 and h.durable_seq == 5 and h.samples_stored == 2
        with self.opened(location) as h:
            assert h.durable_seq == 5

    @pytest.mark.parametrize(("call", "field"), BAD_QUERIES)
    def test_query_errors_name_the_field(self, hist: Historian, call: _Call, field: str) -> None:
        known = self.ids(hist)
        with pytest.raises(QueryError) as err:
            call(hist, known[0], max(known) + 1000)
        assert err.value.field == field
