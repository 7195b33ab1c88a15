"""1-hour rollups: built from the 1-minute ones, they give the aggregates the raw samples give (the plain-Python
reference), stay right when late samples land in hours already built, survive a reopen, and expire."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plantlink.historian import Retention
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.historian.duckdb import aggregate as agg
from plantlink.historian.duckdb.hourly import HOUR_US as H
from plantlink.samples import Quality, numeric_batch
from plantlink.testing._historian_aggregate import random_series
from plantlink.testing.reference import Sample, reference_aggregate
from tests.historian.conftest import DAY, T0, M, S

GOOD = int(Quality.GOOD)


def rows_by_bucket(table, tag_id: int) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    return {int(r["bucket"].timestamp() * 1_000_000): r for r in table.to_pylist() if r["tag_id"] == tag_id}


def write(h: DuckDBHistorian, tag: int, samples: list[Sample]) -> None:
    h.write(numeric_batch([tag] * len(samples), [s[0] for s in samples], [s[1] for s in samples],
                          [s[2] for s in samples]))


def assert_matches_reference(h: DuckDBHistorian, samples: dict[int, list[Sample]], start: int, end: int,
                             interval: int) -> None:
    got_all = h.aggregate(sorted(samples), start, end, interval)
    for tag, series in samples.items():
        ref = reference_aggregate(series, start, end, interval)
        got = rows_by_bucket(got_all, tag)
        assert sorted(got) == sorted(ref)
        for b, expect in ref.items():
            for name, value in expect.items():
                assert got[b][name] == pytest.approx(value, rel=1e-9), (tag, b, name)


def reads_hours(h: DuckDBHistorian, start: int, end: int, interval: int) -> bool:
    return any("FROM r1h" in s for s in agg.sources(h._snapshot(), [1], start, end, interval))


@pytest.fixture
def two_days(hist: DuckDBHistorian) -> dict[int, list[Sample]]:
    rng = np.random.default_rng(9)
    samples = {1: random_series(rng, 4000, 2 * DAY), 2: random_series(rng, 1500, 2 * DAY)}
    for tag, series in samples.items():
        order = rng.permutation(len(series))  # out of order across flushes: minutes are recomputed
        for part in np.array_split(order, 4):
            write(hist, tag, [series[i] for i in sorted(part)])
            hist.flush()
    return samples


@pytest.mark.parametrize(("interval", "start_off", "end_off"),
                         [(H, 0, 2 * DAY), (2 * H, 0, 2 * DAY), (H, 7 * S, DAY + 13 * M + 5 * S), (6 * H, -DAY, DAY)])
def test_hourly_rollups_give_the_aggregates_of_the_raw_samples(hist: DuckDBHistorian,
                                                              two_days: dict[int, list[Sample]], interval: int,
                                                              start_off: int, end_off: int) -> None:
    start, end = T0 + start_off, T0 + end_off
    assert not reads_hours(hist, start, end, interval)  # nothing built yet: minutes and raw
    assert hist.build_rollups(T0 + 3 * DAY) > 0
    assert reads_hours(hist, start, end, interval)
    assert_matches_reference(hist, two_days, start, end, interval)
    assert not reads_hours(hist, start, end, 15 * M)  # not a whole number of hours: minutes


def test_late_samples_in_built_hours_are_seen_at_once_and_rebuilt(hist: DuckDBHistorian,
                                                                  two_days: dict[int, list[Sample]]) -> None:
    hist.build_rollups(T0 + 3 * DAY)
    late = [(T0 + 5 * H + 17 * S, 1e6, GOOD), (T0 + DAY + 30 * M, -1e6, GOOD)]
    write(hist, 1, late)
    hist.flush()
    two_days[1] = sorted([*two_days[1], *late])
    assert hist._snapshot().r1h_upto == T0 + 5 * H  # hours from the late sample on read minutes again
    assert_matches_reference(hist, two_days, T0, T0 + 2 * DAY, H)
    assert hist.build_rollups(T0 + 3 * DAY) > 0
    assert hist._snapshot().r1h_upto == T0 + 3 * DAY - H  # the last hour that ended a minute ago
    assert_matches_reference(hist, two_days, T0, T0 + 2 * DAY, H)


def test_built_hours_survive_a_reopen_and_expire_with_their_retention(store_path: Path,
                                                                      hist: DuckDBHistorian,
                                                                      two_days: dict[int, list[Sample]]) -> None:
    hist.build_rollups(T0 + 3 * DAY)
    hist.close()
    h = DuckDBHistorian(store_path, Retention(raw=None, rollup_1h=DAY / S))
    h.open()
    try:
        assert h._snapshot().r1h_upto == T0 + 3 * DAY - H
        assert_matches_reference(h, two_days, T0, T0 + 2 * DAY, H)
        assert h.apply_retention(T0 + 2 * DAY) > 0  # hours of the first day go
        assert h._cursor().execute("SELECT min(bucket) FROM r1h").fetchone() == (T0 + DAY,)
    finally:
        h.close()
