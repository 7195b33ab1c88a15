"""The DuckDB historian's storage contract: raw ranges, latest, durability, ids, text, downsample, retention,
errors and concurrent use."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from plantlink.errors import HistorianError, QueryError
from plantlink.historian import Retention, TagMeta, open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch, text_batch
from tests.historian.conftest import DAY, T0, M, S

GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)


def us(col: pa.ChunkedArray) -> list[int]:
    return col.cast(pa.int64()).to_pylist()


def test_raw_is_half_open_ordered_and_limited(hist: DuckDBHistorian) -> None:
    ts = [T0 + 3 * S, T0 + 1 * S, T0 + 2 * S, T0 + 4 * S, T0 + DAY + S]  # out of order, across a day
    hist.write(numeric_batch([1] * 5, ts, [3.0, 1.0, 2.0, 4.0, 5.0], [GOOD, GOOD, BAD, GOOD, GOOD]))
    hist.flush()
    t = hist.raw(1, T0 + S, T0 + 4 * S)
    assert us(t.column("ts")) == [T0 + S, T0 + 2 * S, T0 + 3 * S]  # end excluded, start included
    assert t.column("quality").to_pylist() == [GOOD, BAD, GOOD]  # raw keeps every quality
    assert us(hist.raw(1, T0, T0 + 2 * DAY, limit=2).column("ts")) == [T0 + S, T0 + 2 * S]
    assert us(hist.raw(1, T0 + 4 * S, T0 + 2 * DAY).column("ts")) == [T0 + 4 * S, T0 + DAY + S]
    assert hist.raw(2, T0, T0 + DAY).num_rows == 0


def test_latest_across_flushes_and_reopen(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, flush_rows=3)
    ids = h.register_tags([TagMeta("a"), TagMeta("b"), TagMeta("c")])
    a, b, c = ids["a"], ids["b"], ids["c"]
    h.write(numeric_batch([a, b, a], [T0 + 2 * S, T0, T0 + S], [2.0, 7.0, 1.0], GOOD))  # auto-flush at 3 rows
    h.write(numeric_batch([b], [T0 - S], [6.0], GOOD))  # older than what b has, but it arrived last
    h.write(numeric_batch([a], [T0 + 5 * S], [9.0], BAD))  # buffered only; bad still counts as latest
    before = h.latest([c, b, a]).to_pylist()
    assert [r["tag_id"] for r in before] == [c, b, a]
    assert before[0]["ts"] is None and before[0]["value"] is None
    assert (before[1]["value"], before[2]["value"], before[2]["quality"]) == (6.0, 9.0, BAD)
    h.close()
    h2 = open_historian("duckdb", path=store_path)
    # the store keeps no arrival order: after a reopen a tag's latest is its sample with the greatest timestamp
    # until the next sample arrives
    after = h2.latest([c, b, a])
    assert after.to_pylist()[0::2] == before[0::2]
    assert (after.column("value")[1].as_py(), us(after.column("ts"))[1]) == (7.0, T0)
    assert h2.raw(a, T0, T0 + DAY).column("value").to_pylist() == [1.0, 2.0, 9.0]
    assert h2.raw(b, T0 - DAY, T0 + DAY).num_rows == 2
    h2.close()


def test_latest_is_the_last_to_arrive_whatever_its_timestamp(hist: DuckDBHistorian) -> None:
    """A sample stamped far ahead must not hide the ones that follow it; the last row of the last write wins."""
    year_2099 = 4_070_908_800 * S
    hist.write(numeric_batch([1, 1, 2], [year_2099, T0, T0 + S], [99.0, 1.0, 5.0], GOOD))  # within one write
    assert hist.latest([1, 2]).column("value").to_pylist() == [1.0, 5.0]
    hist.write(numeric_batch([1], [year_2099], [99.0], GOOD))
    hist.write(numeric_batch([1], [T0 + 2 * S], [2.0], GOOD))  # across writes
    latest = hist.latest([1])
    assert latest.column("value").to_pylist() == [2.0] and us(latest.column("ts")) == [T0 + 2 * S]
    hist.flush()
    assert hist.raw(1, T0, T0 + DAY).column("value").to_pylist() == [1.0, 2.0]  # history keeps everything


def test_latest_keeps_why_a_value_is_not_a_number(store_path: Path) -> None:
    """NaN and the infinities stay as stored; a sample without a value is null, before and after a reopen."""
    h = open_historian("duckdb", path=store_path)
    ids = list(h.register_tags([TagMeta(n) for n in ("nan", "pinf", "ninf", "none", "num")]).values())
    values = [float("nan"), float("inf"), float("-inf"), 0.0, 1.5]
    h.write(numeric_batch(ids, T0, values, [BAD] * 4 + [GOOD], missing=np.array([False] * 3 + [True, False])))
    for hh in (h, None):
        if hh is None:
            h.close()
            hh = h = open_historian("duckdb", path=store_path)
        got = hh.latest(ids).column("value").to_pylist()
        assert np.isnan(got[0]) and got[1:3] == [float("inf"), float("-inf")] and got[3:] == [None, 1.5]
    h.close()


def test_every_sample_written_before_close_is_there_after_reopen(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, flush_rows=1000)
    (tag,) = h.register_tags([TagMeta("x")]).values()
    rng = np.random.default_rng(1)
    ts = T0 + np.sort(rng.choice(3 * DAY // S, size=2500, replace=False)) * S
    values = rng.normal(size=2500)
    for part in np.array_split(np.arange(2500), 7):  # several auto-flushes and a buffered tail
        h.write(numeric_batch(np.full(len(part), tag), ts[part], values[part], GOOD))
    h.close()
    h2 = open_historian("duckdb", path=store_path)
    t = h2.raw(tag, T0, T0 + 4 * DAY)
    assert us(t.column("ts")) == ts.tolist()
    assert np.array_equal(t.column("value").to_numpy(), values)
    assert h2.aggregate([tag], T0, T0 + 4 * DAY, DAY, ["count"]).column("count").to_pylist() == [
        int(np.sum((ts >= T0 + d * DAY) & (ts < T0 + (d + 1) * DAY))) for d in range(3)
    ]
    h2.close()


def test_ids_are_stable_across_reopen(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path)
    first = h.register_tags([TagMeta("p/1", "bar"), TagMeta("p/2")])
    h.close()
    h = open_historian("duckdb", path=store_path)
    again = h.register_tags([TagMeta("p/3"), TagMeta("p/2"), TagMeta("p/1")])
    assert again["p/1"] == first["p/1"] and again["p/2"] == first["p/2"]
    assert again["p/3"] not in first.values()
    tags = h.tags().to_pylist()
    assert [(r["path"], r["unit"]) for r in tags] == [("p/1", "bar"), ("p/2", ""), ("p/3", "")]
    assert h.tags().schema.field("tag_id").type == pa.uint32()
    h.close()


def test_text_tags(hist: DuckDBHistorian, store_path: Path) -> None:
    hist.write(text_batch([3, 3], [T0 + S, T0 + 2 * S], ["RUN", "STOP"], GOOD))
    hist.write(numeric_batch([1], [T0], [1.5], GOOD))
    row1, row3 = hist.latest([1, 3]).to_pylist()
    assert (row3["text"], row3["value"], row1["text"], row1["value"]) == ("STOP", None, None, 1.5)
    hist.flush()
    assert hist.raw(3, T0, T0 + M).column("value").to_pylist() == ["RUN", "STOP"]
    hist.close()
    h2 = open_historian("duckdb", path=store_path)
    assert h2.latest([3]).column("text").to_pylist() == ["STOP"]
    h2.close()


def test_downsample_keeps_extremes_within_n_out(hist: DuckDBHistorian) -> None:
    n = 50_000
    ts = T0 + np.arange(n, dtype=np.int64) * S
    rng = np.random.default_rng(7)
    values = np.sin(np.arange(n) / 500) + rng.normal(0, 0.1, n)
    values[12_345], values[40_001] = 9.0, -9.0
    quality = np.full(n, GOOD)
    quality[777] = BAD
    values[777] = 100.0  # bad: must not show up as the maximum
    hist.write(numeric_batch(np.ones(n), ts, values, quality))
    hist.flush()
    t = hist.downsample(1, T0, T0 + n * S, n_out=200)
    got_ts, got_v = us(t.column("ts")), t.column("value").to_numpy()
    assert 100 < len(got_ts) <= 200
    assert got_ts == sorted(got_ts)
    assert got_v.max() == 9.0 and got_v.min() == -9.0
    assert T0 + 12_345 * S in got_ts and T0 + 40_001 * S in got_ts
    small = hist.downsample(1, T0, T0 + 10 * S, n_out=200)
    assert us(small.column("ts")) == (T0 + np.arange(10) * S).tolist()


def test_retention_drops_old_raw_and_keeps_rollups(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, retention=Retention(raw=2 * 86400.0, rollup_1m=None))
    (tag,) = h.register_tags([TagMeta("r")]).values()
    ts = T0 + np.arange(4 * 24, dtype=np.int64) * 3600 * S  # hourly over 4 days
    h.write(numeric_batch(np.full(len(ts), tag), ts, np.arange(len(ts), dtype=float), GOOD))
    h.flush()
    now = T0 + 3 * DAY + 12 * 3600 * S  # cutoff T0 + 1.5 days
    assert h.apply_retention(now) == 36  # 24 + 12 hourly samples older than the cutoff
    assert us(h.raw(tag, T0, T0 + 4 * DAY, limit=1).column("ts")) == [T0 + 36 * 3600 * S]
    # the 1-minute rollups are kept forever: hourly counts are still there for the first day
    assert h.aggregate([tag], T0, T0 + DAY, 3600 * S, ["count"]).num_rows == 24
    assert h.apply_retention(now) == 0
    h.close()


def test_rollup_retention(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, retention=Retention(raw=None, rollup_1m=86400.0))
    (tag,) = h.register_tags([TagMeta("r")]).values()
    h.write(numeric_batch([tag, tag], [T0 + S, T0 + 2 * DAY], [1.0, 2.0], GOOD))
    h.flush()
    assert h.apply_retention(T0 + 2 * DAY + S) == 1  # the rollup row of the first day
    assert h.raw(tag, T0, T0 + 3 * DAY).num_rows == 2
    h.close()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.raw(99, T0, T0 + S), "tag_id"),
        (lambda h: h.latest([1, 42]), "tag_ids"),
        (lambda h: h.aggregate([1, 77], T0, T0 + M, M), "tag_ids"),
        (lambda h: h.raw(1, T0 + S, T0), "end_us"),
        (lambda h: h.aggregate([1], T0, T0, M), "end_us"),
        (lambda h: h.aggregate([1], T0, T0 + M, 0), "interval_us"),
        (lambda h: h.aggregate([1], T0, T0 + M, -5), "interval_us"),
        (lambda h: h.aggregate([1], T0, T0 + M, M, ["median"]), "aggregates"),
        (lambda h: h.downsample(1, T0, T0 + M, n_out=2), "n_out"),
        (lambda h: h.downsample(5, T0, T0 + M), "tag_id"),
    ],
)
def test_query_errors_name_the_field(hist: DuckDBHistorian, call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError) as err:
        call(hist)
    assert err.value.field == field


def test_bad_batches_are_refused_and_the_rest_keeps_working(hist: DuckDBHistorian) -> None:
    with pytest.raises(HistorianError, match=r"unregistered tag ids \[9\]"):
        hist.write(numeric_batch([1, 9], [T0, T0], [1.0, 2.0], GOOD))
    wrong = pa.RecordBatch.from_pydict({"tag_id": pa.array([1], pa.uint32()), "ts": [T0]})
    with pytest.raises(HistorianError, match="missing columns"):
        hist.write(wrong)
    hist.write(numeric_batch([1], [T0], [1.0], GOOD))
    assert hist.flush() == 1 and hist.samples_stored == 1


def test_writer_thread_with_concurrent_readers(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, flush_rows=500)
    ids = list(h.register_tags([TagMeta(f"t{i}") for i in range(20)]).values())
    errors: list[BaseException] = []
    steps = 300

    def writer() -> None:
        try:
            for k in range(steps):
                h.write(numeric_batch(ids, T0 + k * S, np.full(20, float(k)), GOOD))
                if k % 50 == 0:
                    threading.Thread(target=h.flush).start()  # flushes from other threads too
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while w.is_alive():
                latest = h.latest(ids).column("value").to_numpy(zero_copy_only=False)
                assert np.all(np.isnan(latest)) or np.ptp(latest[~np.isnan(latest)]) <= 1
                h.aggregate(ids[:5], T0, T0 + steps * S, M)
                h.raw(ids[0], T0, T0 + steps * S)
        except BaseException as exc:
            errors.append(exc)

    w = threading.Thread(target=writer)
    readers = [threading.Thread(target=reader) for _ in range(2)]
    w.start()
    for r in readers:
        r.start()
    w.join()
    for r in readers:
        r.join()
    h.flush()
    assert not errors, errors
    assert h.raw(ids[7], T0, T0 + DAY).num_rows == steps
    assert h.aggregate([ids[3]], T0, T0 + DAY, DAY, ["count", "max"]).to_pylist()[0]["count"] == steps
    h.close()


def test_close_while_a_background_flush_waits_does_not_deadlock(store_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """close() used to hold the write lock while waiting for a background flush that needs that lock."""
    real_flush = DuckDBHistorian.flush

    def slow_start(self: DuckDBHistorian) -> int:
        if threading.current_thread().name.startswith("historian-flush"):
            threading.Event().wait(0.3)  # the worker starts after close() has begun
        return real_flush(self)

    monkeypatch.setattr(DuckDBHistorian, "flush", slow_start)
    h = open_historian("duckdb", path=store_path, flush_rows=10)
    (tag,) = h.register_tags([TagMeta("t")]).values()
    h.write(numeric_batch([tag] * 25, [T0 + i * S for i in range(25)], [float(i) for i in range(25)], GOOD))
    closer = threading.Thread(target=h.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "close() deadlocked"
    h = open_historian("duckdb", path=store_path)
    try:
        assert h.raw(tag, T0, T0 + 25 * S).num_rows == 25  # every sample written before close is stored
    finally:
        h.close()
