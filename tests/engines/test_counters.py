"""Production counters: rollovers, resets and bad-quality gaps, computed by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantlink.engines.counters import count_between, count_windows, increments

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


def test_nan_gaps_are_skipped() -> None:
    # 10, bad, bad, 15, bad, 20: 15 is measured from 10, 20 from 15
    assert increments(np.array([10, NAN, NAN, 15, NAN, 20]), U16).tolist() == [0, 0, 0, 5, 0, 5]
    # a rollover across a gap: 65534 -> 2 is 2 + 65536 - 65534 = 4
    assert increments(np.array([65534, NAN, 2]), U16).tolist() == [0, 0, 4]
    # leading bad samples, infinities are bad too
    assert increments(np.array([NAN, 5, np.inf, 7]), U16).tolist() == [0, 0, 0, 2]


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
    # increments: 0, 10, 65420, 10 (4 + 65536 - 65530), 0, 10
    assert count_between(TS, values, 0, 60, U16) == 65450
    # [20, 40): the first sample in range (20) is measured from the one before (10): 65420 + 10
    assert count_between(TS, values, 20, 40, U16) == 65430
    # [25, 50): end is exclusive, the sample at 50 is out; 30 gives 10, 40 is bad
    assert count_between(TS, values, 25, 50, U16) == 10
    # [45, 60): 50 is measured from the last good sample before the range (30, value 4): 10
    assert count_between(TS, values, 45, 60, U16) == 10
    # no sample before the range: the first one in range has no baseline and counts 0
    assert count_between(TS, values, -5, 15, U16) == 10
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
    windows = count_windows(ts, values, edges, U16)
    assert windows.tolist() == [count_between(ts, values, int(a), int(b), U16) for a, b in itertools.pairwise(edges)]
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
    assert increments(with_gaps, counter_max).sum() == total
    ts = np.arange(values.size, dtype=np.int64)
    assert count_between(ts, with_gaps, 0, values.size, counter_max) == total


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
