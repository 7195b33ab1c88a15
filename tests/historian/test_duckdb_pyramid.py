"""The rollup pyramid (1 minute, 1 hour, 1 day): aggregate picks the coarsest built level whose bucket divides
the interval, every level gives the answer numpy gives on the raw samples (gaps, bad and uncertain quality,
ranges that cut buckets), late samples lower the built levels at once and the next build restores them."""

from __future__ import annotations

import numpy as np
import pytest

from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.historian.duckdb import aggregate as agg
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, M, S
from tests.historian.pyramid_reference import Samples, answers, assert_same
from tests.historian.test_duckdb_compaction import make_samples, write_in_pieces

H = 3600 * S
NOW = T0 + 4 * DAY


@pytest.fixture
def samples(hist: DuckDBHistorian) -> dict[int, Samples]:
    rng = np.random.default_rng(21)
    s = make_samples(rng)
    write_in_pieces(hist, s, rng)
    return s


def levels_read(h: DuckDBHistorian, start: int, end: int, interval: int) -> set[str]:
    found = set()
    for part in agg.sources(h._snapshot(), [1, 2], start, end, interval):
        if isinstance(part, agg.Section):  # a day that may hold markers: its stored minutes (and its sparse
            part = part.stored  # tags' raw samples, of the minute level)
        for name in ("r1d", "r1h", "r1m_d", "raw_d"):
            if f"FROM {name}" in part:
                found.add(name.removesuffix("_d"))
    return found


CASES = [  # interval, range, the levels it reads once the pyramid is built
    (10 * S, (T0 - 7 * S, T0 + 3 * DAY + 11 * S), {"raw"}),
    (30 * S, (T0 + 5 * H + 3 * S, T0 + DAY + 2 * H), {"raw"}),
    (5 * M, (T0 + 7 * S, T0 + 3 * DAY - 11 * S), {"raw", "r1m"}),
    (5 * M, (T0 - 7 * S, T0 + 3 * DAY + 11 * S), {"r1m"}),  # no raw day before nor after the data
    (2 * H, (T0 + 7 * S, T0 + 3 * DAY - 11 * S), {"raw", "r1m", "r1h"}),
    (DAY, (T0, T0 + 3 * DAY), {"r1d"}),
    (DAY, (T0 + 90 * S, T0 + 2 * DAY + 5 * H + 61 * S), {"raw", "r1m", "r1h", "r1d"}),
    (2 * DAY, (T0 - 2 * DAY, T0 + 4 * DAY), {"r1d", "r1h"}),  # the hours of the last day are not all built
]


@pytest.mark.parametrize(("interval", "span", "levels"), CASES)
def test_each_level_gives_what_numpy_gives_on_the_raw_samples(hist: DuckDBHistorian, samples: dict[int, Samples],
                                                              interval: int, span: tuple[int, int],
                                                              levels: set[str]) -> None:
    start, end = span
    assert_same(answers(hist, [1, 2], start, end, interval), samples, start, end, interval)  # nothing built
    assert hist.build_rollups(NOW) > 0  # hours, days, and the closed days compacted
    assert levels_read(hist, start, end, interval) == levels
    hours = hist._cursor().execute("SELECT tag_id, bucket FROM r1h").fetchall()
    assert hours == sorted(hours)  # sorted once the days were built
    assert_same(answers(hist, [1, 2], start, end, interval), samples, start, end, interval)


def test_late_samples_lower_the_days_and_hours_and_the_next_build_restores_them(
        hist: DuckDBHistorian, samples: dict[int, Samples]) -> None:
    hist.build_rollups(NOW)
    snap = hist._snapshot()
    assert snap.r1d_upto == T0 + 3 * DAY and snap.r1h_upto == NOW - H
    late_ts = T0 + DAY + 5 * H + 17 * S + 3
    hist.write(numeric_batch([2], [late_ts], [1e4], [Quality.GOOD]))
    hist.flush()
    ts, value, quality = samples[2]
    samples[2] = (np.append(ts, late_ts), np.append(value, 1e4), np.append(quality, np.uint8(Quality.GOOD)))
    snap = hist._snapshot()
    assert snap.r1d_upto == T0 + DAY and snap.r1h_upto == T0 + DAY + 5 * H
    for interval in (DAY, 2 * H, 5 * M):
        assert_same(answers(hist, [1, 2], T0, T0 + 3 * DAY, interval), samples, T0, T0 + 3 * DAY, interval)
    hist.build_rollups(NOW)
    assert hist._snapshot().r1d_upto == T0 + 3 * DAY
    assert levels_read(hist, T0, T0 + 3 * DAY, DAY) == {"r1d"}
    assert_same(answers(hist, [1, 2], T0, T0 + 3 * DAY, DAY), samples, T0, T0 + 3 * DAY, DAY)


def test_the_days_survive_a_reopen(store_path, hist: DuckDBHistorian,  # type: ignore[no-untyped-def]
                                   samples: dict[int, Samples]) -> None:
    hist.build_rollups(NOW)
    hist.close()
    h = DuckDBHistorian(store_path)
    h.open()
    try:
        assert h._snapshot().r1d_upto == T0 + 3 * DAY
        assert_same(answers(h, [1, 2], T0, T0 + 3 * DAY, DAY), samples, T0, T0 + 3 * DAY, DAY)
    finally:
        h.close()
