"""Production counters: rollovers, resets, and gaps (bad quality, restarts, missing samples), computed by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantlink.engines.counters import (
    Tally,
    count_between,
    count_windows,
    gaps_before,
    increments,
    split,
    tally_between,
)

NAN = float("nan")
U16 = 65535
U32 = 2**32 - 1


def test_rollover_at_65535() -> None:
    # 65530 -> 65535: +5; 65535 -> 3: wraps through 0, 3 + 65536 - 65535 = 4; 3 -> 10: +7
    assert increments(np.array([65530, 65535, 3, 10]), U16).tolist() == [0, 5, 4, 7]


def test_rollover_at_2_pow_32() -> None:
    # 4294967290 -> 5: 5 + 4294967296 - 4294967290 = 11
    assert increments(np.array([4294967290, 4294967295, 5], dtype=np.float64), U32).tolist() == [0, 5, 6]
    assert increments(np.array([4294967290, 5], dtype=np.uint32), U32).tolist() == [0, 11]


def test_reset_counts_from_zero() -> None:
    # 250 -> 3 with a 16-bit counter: 250 is not in the top half (> 32767.5): a reset, 3 made since
    assert increments(np.array([100, 250, 3, 10]), U16).tolist() == [0, 150, 3, 7]
    # 40000 -> 35000: 35000 is not small (> 32767.5): a reset, not a rollover of 60536
    assert increments(np.array([40000, 35000]), U16).tolist() == [0, 35000]


def test_reset_threshold() -> None:
    # default 0.5: 50000 > 32767.5 and 10 <= 32767.5: rollover, 10 + 65536 - 50000 = 15546
    assert increments(np.array([50000, 10]), U16).tolist() == [0, 15546]
    # 0.9: 50000 is not above 58981.5: a reset, 10
    assert increments(np.array([50000, 10]), U16, reset_threshold=0.9).tolist() == [0, 10]


def test_a_bad_sample_is_a_gap_whose_step_is_reported_apart() -> None:
    # 10, bad, bad, 15, bad, 20: 15 and 20 follow a gap: baselines, their steps (5 and 5) are gap quantity
    got = split(np.array([10, NAN, NAN, 15, NAN, 20]), U16)
    assert got.units.tolist() == [0, 0, 0, 0, 0, 0]
    assert got.gap.tolist() == [0, 0, 0, 5, 0, 5]
    assert not got.gap_reset.any()
    # a rollover across a gap is still a rollover: 65534 -> 2 is 2 + 65536 - 65534 = 4, across the gap
    assert split(np.array([65534, NAN, 2, 3]), U16).gap.tolist() == [0, 0, 4, 0]
    assert increments(np.array([65534, NAN, 2, 3]), U16).tolist() == [0, 0, 0, 1]
    # leading bad samples, infinities are bad too
    assert increments(np.array([NAN, 5, np.inf, 7, 8]), U16).tolist() == [0, 0, 0, 0, 1]


def test_a_decrease_across_a_gap_is_unknown_not_counted() -> None:
    # 1000 -> (gap) -> 200: reset while nobody watched, or another device: neither production nor gap quantity
    got = split(np.array([1000, 1005, NAN, 200, 210]), U32)
    assert got.units.tolist() == [0, 5, 0, 0, 10]
    assert got.gap.tolist() == [0, 0, 0, 0, 0]
    assert got.gap_reset.tolist() == [False, False, False, True, False]
    # the same decrease within a continuous stretch is a reset counted from zero (an operator cleared it)
    assert increments(np.array([1000, 1005, 200, 210]), U32).tolist() == [0, 5, 200, 10]


def test_gaps_before_restarts_and_missing_samples() -> None:
    ts = np.array([0, 10, 20, 40, 50, 60, 200], dtype=np.int64)
    # a run of plantlink stopped cleanly at 25: samples after it were read by the next run
    assert gaps_before(ts, cuts=[25]).tolist() == [False, False, False, True, False, False, False]
    # a pair more than 100 apart has a gap between (samples went missing)
    assert gaps_before(ts, max_gap_us=100).tolist() == [False] * 6 + [True]
    # the next run read a value whose (OPC UA) timestamp is when it changed, at 30, before its own start at
    # 40: it is the next run's first reading, continuous with what that run reads next
    ts2 = np.array([0, 20, 30, 45], dtype=np.int64)
    assert gaps_before(ts2, cuts=[25]).tolist() == [False, False, True, False]
    # after a crash, from its last known time (25) to the instant before the next start (39): who read a sample
    # stamped between is not known, so it is cut off on both sides
    assert gaps_before(ts2, cuts=[25, 39]).tolist() == [False, False, True, True]
    # the exact instants: a sample at the cut still belongs before it
    ts3 = np.array([0, 25, 40, 41], dtype=np.int64)
    assert gaps_before(ts3, cuts=[25]).tolist() == [False, False, True, False]
    # several cuts, a pair between them straddles none
    assert gaps_before(np.array([0, 10, 20, 40], dtype=np.int64), cuts=[5, 35]).tolist() == [False, True, False, True]
    assert gaps_before(np.array([], dtype=np.int64), cuts=[25]).tolist() == []


def test_first_reading_after_a_restart_is_a_baseline() -> None:
    ts = np.array([0, 10, 20, 40, 50], dtype=np.int64)
    cuts = [25]
    # the device kept counting while plantlink was stopped: 110 -> 150 is counted across the gap, not made now
    kept = np.array([100, 105, 110, 150, 160])
    assert tally_between(ts, kept, 0, 60, U32, cuts=cuts) == Tally(20.0, 40.0, 0)
    assert count_between(ts, kept, 0, 60, U32, cuts=cuts) == 20
    assert tally_between(ts, kept, 30, 60, U32, cuts=cuts) == Tally(10.0, 40.0, 0)
    # the device restarted with its counter elsewhere (a simulator's seeded start): not 1_147_270 parts
    moved = np.array([1_147_000, 1_147_005, 1_147_010, 900, 910])
    assert tally_between(ts, moved, 0, 60, U32, cuts=cuts) == Tally(20.0, 0.0, 1)
    assert count_windows(ts, kept, np.array([0, 30, 60]), U32, cuts=cuts).tolist() == [10, 10]


def test_a_time_gap_beyond_the_expected_period() -> None:
    ts = np.array([0, 1, 2, 30, 31], dtype=np.int64)
    values = np.array([0, 1, 2, 20, 21])
    assert tally_between(ts, values, 0, 40, U16, max_gap_us=5) == Tally(3.0, 18.0, 0)
    assert tally_between(ts, values, 0, 40, U16) == Tally(21.0, 0.0, 0)


def test_degenerate_inputs() -> None:
    assert increments(np.array([]), U16).tolist() == []
    assert increments(np.array([7.0]), U16).tolist() == [0]
    assert increments(np.array([NAN, NAN]), U16).tolist() == [0, 0]
    assert increments(np.array([1.5, 2.0, 2.0]), U16).tolist() == [0, 0.5, 0]  # scaled counters may be floats
    with pytest.raises(ValueError, match="counter_max must be > 0"):
        increments(np.array([1, 2]), 0)
    with pytest.raises(ValueError, match="reset_threshold"):
        increments(np.array([1, 2]), U16, reset_threshold=1.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        increments(np.zeros((2, 2)), U16)


TS = np.array([0, 10, 20, 30, 40, 50], dtype=np.int64)


def test_count_between() -> None:
    values = np.array([100, 110, 65530, 4, NAN, 14])
    # increments: 0, 10, 65420, 10 (4 + 65536 - 65530), 0, then 14 follows a bad sample: 10 across the gap
    assert count_between(TS, values, 0, 60, U16) == 65440
    assert tally_between(TS, values, 0, 60, U16) == Tally(65440.0, 10.0, 0)
    # [20, 40): the first sample in range (20) is measured from the one before (10): 65420 + 10
    assert count_between(TS, values, 20, 40, U16) == 65430
    # [25, 50): end is exclusive, the sample at 50 is out; 30 gives 10, 40 is bad
    assert count_between(TS, values, 25, 50, U16) == 10
    # [45, 60): 50 is measured from the last good sample before the range (30, value 4), across the gap
    assert tally_between(TS, values, 45, 60, U16) == Tally(0.0, 10.0, 0)
    # no sample before the range: the first one in range has no baseline and counts 0
    assert count_between(TS, values, -5, 15, U16) == 10
    with pytest.raises(ValueError, match="after_gap must have the shape"):
        split(values, U16, after_gap=np.zeros(2, dtype=bool))
    assert count_between(TS, values, 60, 90, U16) == 0
    assert count_between(TS, values, 51, 51, U16) == 0


def test_count_between_rejects_bad_samples() -> None:
    with pytest.raises(ValueError, match="sorted ascending \\(sample 2"):
        count_between(np.array([0, 5, 3]), np.array([1, 2, 3]), 0, 10, U16)
    with pytest.raises(ValueError, match="equal length"):
        count_between(np.array([0, 5]), np.array([1, 2, 3]), 0, 10, U16)
    with pytest.raises(ValueError, match="before start_us"):
        count_between(TS, np.arange(6.0), 10, 0, U16)


def test_count_windows_equals_count_between() -> None:
    rng = np.random.default_rng(3)
    ts = np.sort(rng.integers(0, 10_000, size=500)).astype(np.int64)
    true = np.cumsum(rng.integers(0, 50, size=500))
    values = (true % (U16 + 1)).astype(np.float64)
    values[rng.random(500) < 0.05] = NAN
    edges = np.arange(-500, 11_000, 700, dtype=np.int64)
    for kw in ({}, {"cuts": [2000, 6100, 6399], "max_gap_us": 60}):
        windows = count_windows(ts, values, edges, U16, **kw)  # type: ignore[arg-type]
        assert windows.tolist() == [count_between(ts, values, int(a), int(b), U16, **kw)  # type: ignore[arg-type]
                                    for a, b in itertools.pairwise(edges)]
    assert count_windows(ts, values, edges[:1], U16).shape == (0,)


@st.composite
def counter_series(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray, int]:
    """A true monotonic count sampled by a counter that rolls over; steps of at most half the range are
    unambiguous. Some samples are bad (NaN), at most 3 in a row, with steps of at most 1/8 of the range so a
    gap never spans more than half of it. Returns (counter_max, values, mask of bad samples, true count)."""
    counter_max = draw(st.sampled_from([99, 999, U16, U32]))
    first = draw(st.integers(0, counter_max))
    steps = draw(st.lists(st.integers(0, counter_max // 8), min_size=1, max_size=200))
    bad = draw(st.lists(st.booleans(), min_size=len(steps) + 1, max_size=len(steps) + 1))
    bad[0] = bad[-1] = False
    for i in range(3, len(bad)):
        if bad[i - 3] and bad[i - 2] and bad[i - 1]:
            bad[i] = False
    true = np.concatenate(([first], first + np.cumsum(steps)))
    values = (true % (counter_max + 1)).astype(np.float64)
    return counter_max, values, np.array(bad), int(sum(steps))


@settings(max_examples=300, deadline=None)
@given(counter_series())
def test_property_rollovers_and_gaps_sum_to_true_count(series: tuple[int, np.ndarray, np.ndarray, int]) -> None:
    counter_max, values, bad, total = series
    assert increments(values, counter_max).sum() == total
    with_gaps = values.copy()
    with_gaps[bad] = NAN
    parts = split(with_gaps, counter_max)
    # production and what went across gaps add up to the true count; nothing after a gap is production
    assert parts.units.sum() + parts.gap.sum() == total
    after_bad = np.flatnonzero(bad[:-1]) + 1
    assert not parts.units[after_bad].any()
    ts = np.arange(values.size, dtype=np.int64)
    tally = tally_between(ts, with_gaps, 0, values.size, counter_max)
    assert tally.units + tally.gap_units == total and tally.gap_resets == 0


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([U16, U32]),
    st.lists(st.integers(0, U16 // 2), min_size=1, max_size=300),
)
def test_property_big_steps_without_gaps(counter_max: int, steps: list[int]) -> None:
    # any step up to half the 16-bit range, so 16-bit counters wrap often
    true = np.concatenate(([0], np.cumsum(steps)))
    values = (true % (counter_max + 1)).astype(np.float64)
    assert increments(values, counter_max).sum() == sum(steps)
