"""Sparse tags keep their minutes in raw when the store's ``sparse_minutes`` is on (30, the default; 0 turns it
off): compaction stores one marker row instead of their minute rows, and every reader of
minutes reads their raw samples as partial rows (``layout.r1m``). Aggregates at 1 min, 5 min and 1 h of a
sparse tag (every 10 s) and a dense one (1 Hz) give what numpy gives on the raw samples before compaction,
after it, after late samples, after a reopen and once raw retention dropped the days (their minutes are
stored first). Off, every tag's minutes are stored. Aggregates fold a marked tag's raw samples into the
buckets themselves (``aggregate._sparse``): a mix of marked and stored tags and days in one query, intervals
that straddle hours and days (7 min, 90 min) or are not whole minutes (7 s, 90 s), with the 1-hour level built
over part of a marked day, bad, uncertain and non-finite samples, against numpy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from plantlink.errors import HistorianError
from plantlink.historian.base import Retention, TagMeta
from plantlink.historian.duckdb import DuckDBHistorian, settings
from plantlink.historian.duckdb import aggregate as agg
from plantlink.historian.duckdb.layout import table
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, TAGS, M, S
from tests.historian.pyramid_reference import Samples, answers, assert_same

H = 3600 * S
NOW = T0 + 3 * DAY
D0 = T0 // DAY
DENSE, SPARSE_TAG = 1, 2
INTERVALS = (M, 5 * M, H)
SPAN = (T0 - 7 * S, T0 + 2 * DAY + 11 * S)


def make(period_s: int, seed: int, days: tuple[int, int] = (0, 2)) -> Samples:
    """Days ``days[0]`` to ``days[1]`` every ``period_s`` with a phase of whole milliseconds; a walk at 2
    decimals, 2 % bad."""
    rng = np.random.default_rng(seed)
    ts = T0 + 417_000 + np.arange(days[0] * DAY, days[1] * DAY, period_s * S, dtype=np.int64)
    value = np.round(50 + np.cumsum(rng.normal(0, 0.3, len(ts))), 2)
    quality = np.where(rng.random(len(ts)) < 0.02, Quality.BAD, Quality.GOOD).astype(np.uint8)
    return ts, value, quality


def odd(samples: Samples, seed: int) -> Samples:
    """``samples`` with 1 % uncertain (good for aggregates) and a few non-finite values of good quality
    (ignored by aggregates)."""
    ts, value, quality = (a.copy() for a in samples)
    rng = np.random.default_rng(seed)
    quality[rng.random(len(ts)) < 0.01] = Quality.UNCERTAIN
    at = rng.choice(len(ts), 30, replace=False)
    value[at] = np.where(np.arange(30) % 2, np.nan, np.inf)
    quality[at] = Quality.GOOD
    return ts, value, quality


@pytest.fixture
def hist(store_path: Path) -> Iterator[DuckDBHistorian]:
    """The store with the setting on (the constructor option, the default value)."""
    h = DuckDBHistorian(store_path, sparse_minutes=settings.DEFAULT_SPARSE_MINUTES)
    h.open()
    h.register_tags(TAGS)
    yield h
    h.close()


def fill(h: DuckDBHistorian) -> dict[int, Samples]:
    out = {DENSE: make(1, 1), SPARSE_TAG: make(10, 2)}
    for tag, (ts, value, quality) in out.items():
        for idx in np.array_split(np.arange(len(ts)), 5):  # five flushes: minutes cut in partial rows
            h.write(numeric_batch(np.full(len(idx), tag), ts[idx], value[idx], quality[idx]))
            h.flush()
    return out


@pytest.fixture
def samples(hist: DuckDBHistorian) -> dict[int, Samples]:
    return fill(hist)


def check(h: DuckDBHistorian, samples: dict[int, Samples], span: tuple[int, int] = SPAN) -> None:
    for interval in INTERVALS:
        assert_same(answers(h, [DENSE, SPARSE_TAG], *span, interval), samples, *span, interval)


def stored_minutes(h: DuckDBHistorian, tag: int, day: int) -> list[int]:
    """The ``n`` of the stored minute rows of ``tag`` in ``day`` (0: the marker)."""
    return [n for (n,) in h._cursor().execute(f"SELECT n FROM {table('r1m', day)} WHERE tag_id = {tag}").fetchall()]


def test_the_sparse_tag_keeps_its_minutes_in_raw_and_answers_the_same(hist: DuckDBHistorian, store_path: Path,
                                                                      samples: dict[int, Samples]) -> None:
    check(hist, samples)  # appended: every minute stored
    assert hist.build_rollups(NOW) > 0  # hours, days, and the two days compacted
    for d in (D0, D0 + 1):
        assert stored_minutes(hist, SPARSE_TAG, d) == [0]  # the marker only
        dense = stored_minutes(hist, DENSE, d)
        assert len(dense) == 1440 and min(dense) > 0
    check(hist, samples)
    check(hist, samples, (T0 + 2 * H + 17 * S, T0 + DAY + 5 * H + 3 * S))  # raw at the edges, minutes, hours
    hist.close()
    with DuckDBHistorian(store_path) as again:  # reopened with the setting off: the markers still read raw
        assert again._snapshot().marked == {D0, D0 + 1}
        check(again, samples)


def test_late_samples_of_a_sparse_tag_are_read_once(hist: DuckDBHistorian, samples: dict[int, Samples]) -> None:
    hist.build_rollups(NOW)
    ts = samples[SPARSE_TAG][0]
    late_ts = np.array([T0 + 5 * H + 3 * S, ts[100]])  # a new time, and one written again
    late = (late_ts, np.array([99.5, -3.25]), np.full(2, Quality.GOOD, dtype=np.uint8))
    hist.write(numeric_batch(np.full(2, SPARSE_TAG), *late))
    hist.flush()
    keep = ts != ts[100]
    order = np.argsort(np.concatenate([ts[keep], late_ts]), kind="stable")
    samples[SPARSE_TAG] = tuple(np.concatenate([a[keep], b])[order] for a, b in zip(samples[SPARSE_TAG], late,
                                                                                     strict=True))
    assert stored_minutes(hist, SPARSE_TAG, D0) == [0]  # the late minutes were not stored beside the raw ones
    check(hist, samples)
    assert hist.compact(NOW) >= 1  # the raw day is due again (its row count changed)
    assert stored_minutes(hist, SPARSE_TAG, D0) == [0]
    check(hist, samples)


def test_raw_retention_stores_the_minutes_of_sparse_tags_first(hist: DuckDBHistorian,
                                                               samples: dict[int, Samples]) -> None:
    hist.build_rollups(NOW)
    hist.retention = Retention(raw=(NOW - (T0 + DAY)) / 1e6, rollup_1m=None)  # the first raw day goes
    hist.apply_retention(NOW)
    assert D0 not in hist._snapshot().raw
    n = stored_minutes(hist, SPARSE_TAG, D0)
    assert len(n) == 1440 and min(n) > 0  # stored when the raw day went
    assert stored_minutes(hist, SPARSE_TAG, D0 + 1) == [0]  # the next day still reads raw
    for interval in INTERVALS:  # the first day from its minutes only (whole minutes)
        assert_same(answers(hist, [DENSE, SPARSE_TAG], T0, T0 + DAY, interval), samples, T0, T0 + DAY, interval)
    check(hist, samples, (T0 + DAY, T0 + 2 * DAY + 11 * S))


def test_a_store_compacted_with_every_minute_stored_answers_the_same(hist: DuckDBHistorian, store_path: Path,
                                                                      samples: dict[int, Samples]) -> None:
    """A store compacted with the setting off (every tag's minutes stored) opens with it on and answers as
    before; its days are not compacted again for it."""
    hist.sparse_minutes = 0
    hist.build_rollups(NOW)
    assert len(stored_minutes(hist, SPARSE_TAG, D0)) == 1440
    hist.close()
    with DuckDBHistorian(store_path, sparse_minutes=settings.DEFAULT_SPARSE_MINUTES) as again:
        assert again.compact(NOW) == 0
        check(again, samples)


def test_on_by_default_and_off_every_minute_is_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.ENV_SPARSE_MINUTES, raising=False)
    assert DuckDBHistorian(tmp_path / "on.duckdb").sparse_minutes == settings.DEFAULT_SPARSE_MINUTES == 30
    with DuckDBHistorian(tmp_path / "off.duckdb", sparse_minutes=0) as h:
        h.register_tags(TAGS)
        samples = fill(h)
        assert h.build_rollups(NOW) > 0
        for d in (D0, D0 + 1):
            for tag in (DENSE, SPARSE_TAG):
                n = stored_minutes(h, tag, d)
                assert len(n) == 1440 and min(n) > 0  # a row per minute, no marker (n = 0)
        assert h._snapshot().marked == frozenset()  # no day reads the raw branch
        check(h, samples)


def test_the_setting_from_the_environment(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ENV_SPARSE_MINUTES, "12")
    assert DuckDBHistorian(store_path).sparse_minutes == 12
    assert DuckDBHistorian(store_path, sparse_minutes=0).sparse_minutes == 0  # the option first
    for bad in ("-1", "thirty", "2.5"):
        monkeypatch.setenv(settings.ENV_SPARSE_MINUTES, bad)
        with pytest.raises(HistorianError, match=settings.ENV_SPARSE_MINUTES):
            DuckDBHistorian(store_path)
    with pytest.raises(HistorianError, match="sparse_minutes"):
        DuckDBHistorian(store_path, sparse_minutes=-1)


def test_marked_and_stored_tags_fold_in_one_query(hist: DuckDBHistorian, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored tag (1 Hz), a marked one (every 10 s) and one marked on the first day only (every 10 s, then
    1 Hz), with uncertain and non-finite samples: every interval against numpy, compacted (both days marked,
    no hour built), then with the hours of half of the first day built (1 h reads them, then minutes). The
    marked tags are read and folded one at a time (``SPARSE_GROUP_TAG_US``: a day of one tag)."""
    monkeypatch.setattr(agg, "SPARSE_GROUP_TAG_US", DAY)
    mixed = hist.register_tags([TagMeta("line1/m1/mixed", "")])["line1/m1/mixed"]
    first, second = make(10, 3, (0, 1)), make(1, 4, (1, 2))
    data = {DENSE: odd(make(1, 1), 5), SPARSE_TAG: odd(make(10, 2), 6),
            mixed: odd(tuple(np.concatenate([a, b]) for a, b in zip(first, second, strict=True)), 7)}
    for tag, (ts, value, quality) in data.items():
        for idx in np.array_split(np.arange(len(ts)), 3):
            hist.write(numeric_batch(np.full(len(idx), tag), ts[idx], value[idx], quality[idx]))
            hist.flush()
    tags = [SPARSE_TAG, DENSE, mixed]
    spans = {M: SPAN, 5 * M: SPAN, H: SPAN, 7 * M: SPAN, 90 * M: SPAN, 7 * S: (T0 + DAY - H - 3 * S, T0 + DAY + H),
             90 * S: (T0 + 20 * H + 7 * S, T0 + DAY + 4 * H)}

    def same() -> None:
        for interval, span in spans.items():
            assert_same(answers(hist, tags, *span, interval), data, *span, interval)
        mid = (T0 + 2 * H + 17 * S, T0 + DAY + 5 * H + 3 * S)  # raw at the edges, a value carried in
        for interval in (M, 5 * M, 90 * M):
            assert_same(answers(hist, tags, *mid, interval), data, *mid, interval)

    same()
    assert hist.compact(NOW) == 4
    assert stored_minutes(hist, mixed, D0) == [0] and min(stored_minutes(hist, mixed, D0 + 1)) > 0
    assert stored_minutes(hist, SPARSE_TAG, D0 + 1) == [0]
    plan = agg.sources(hist._snapshot(), tags, *SPAN, 5 * M)
    assert [p.day for p in plan if isinstance(p, agg.Section)] == [D0, D0 + 1]  # folded here, not read raw
    same()
    hist.build_rollups(T0 + 12 * H + 2 * M)  # the hours of the first half of the first (marked) day
    assert any("FROM r1h" in p for p in agg.sources(hist._snapshot(), tags, *SPAN, H) if isinstance(p, str))
    same()
    assert_same(answers(hist, [SPARSE_TAG], *SPAN, 5 * M), {SPARSE_TAG: data[SPARSE_TAG]}, *SPAN, 5 * M)
    assert_same(answers(hist, [DENSE], *SPAN, 5 * M), {DENSE: data[DENSE]}, *SPAN, 5 * M)
