"""OEE inputs over many spans in one pass (``engines.oee_spans``) equal the span-by-span computation that
``KpiService.machine_inputs`` does (the second implementation, written out here): the data clipped to each span,
the counters read from ``lookback`` before it, ``inputs_from_states``, PBT as planned time in a known state
minus planned stops. Random data with every awkward case: unknown and planned-stop states, overlapping
intervals, bad samples, counter rollovers and resets, silences longer than the look-back, restarts (cuts),
a maximum gap; spans that are shifts, overlap each other, fall in silences or have no samples."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from plantlink.engines.calendar import PlannedTime, merge_intervals, overlap_us
from plantlink.engines.counters import gaps_before, split
from plantlink.engines.oee import Gaps, OeeInputs, inputs_from_states
from plantlink.engines.oee_spans import Counter, inputs_over_spans, intersect, tallies
from plantlink.model.production import Calendar

M = 60 * 10**6
H = 60 * M
T0 = 1_767_000_000 * 10**6  # 2025-12-29, a Monday
STATES = ["running", "running", "running", "faulted", "starved", "planned_stop", "unknown", "idle"]
CAL = Calendar.model_validate({"shifts": [
    {"name": "day", "start": "06:00", "end": "14:00", "breaks": [{"start": "09:00", "end": "09:30"}]},
    {"name": "night", "start": "22:00", "end": "06:00"}]})
LOOKBACK = H
COUNTER_MAX = 9_999


def by_span(intervals: list[tuple[int, int, str]], planned: PlannedTime, s: int, e: int, counters: list[Counter | None],
            gaps: Gaps) -> OeeInputs:
    """What ``KpiService.machine_inputs`` computes for one span from preloaded data."""
    clipped = [(max(a, s), min(b, e), st) for a, b, st in intervals if min(b, e) > max(a, s)]

    def window(c: Counter | None) -> tuple[np.ndarray, np.ndarray] | None:
        if c is None:
            return None
        lo, hi = np.searchsorted(c.ts, s - LOOKBACK), np.searchsorted(c.ts, e)
        return c.ts[lo:hi], c.values[lo:hi]

    produced, good, reject = (window(c) for c in counters)
    assert produced is not None
    inputs = inputs_from_states(clipped, planned, s, e, pri_s=2.0, produced=produced, good=good, reject=reject,
                                counter_max=COUNTER_MAX, gaps=gaps)
    plan_s, plan_e = planned.planned_arrays(s, e)

    def covered(keep: object) -> float:
        iv = [(a, b) for a, b, st in clipped if keep(st)]  # type: ignore[operator]
        ms, me = merge_intervals([a for a, _ in iv], [b for _, b in iv])
        return float(overlap_us(ms, me, plan_s, plan_e).sum()) / 1e6

    return dataclasses.replace(inputs, pbt_s=max(covered(lambda st: st != "unknown")
                                                 - covered(lambda st: st == "planned_stop"), 0.0))


def random_intervals(rng: np.random.Generator, start: int, end: int) -> list[tuple[int, int, str]]:
    out, t = [], start
    while t < end:
        d = int(rng.integers(1, 120)) * M
        if rng.random() < 0.05:  # a hole: no state known
            t += d
            continue
        e = min(t + d + (int(rng.integers(0, 10)) * M if rng.random() < 0.1 else 0), end)  # some overlap
        out.append((t, e, str(rng.choice(STATES))))
        t += d
    return out


def random_counter(rng: np.random.Generator, start: int, end: int) -> Counter:
    ts, v, t, value = [], [], start, float(rng.integers(0, COUNTER_MAX))
    while t < end:
        t += int(rng.integers(20, 90)) * 10**6 if rng.random() > 0.002 else int(rng.integers(1, 4)) * H  # silences
        value += float(rng.integers(0, 3))
        if value > COUNTER_MAX:
            value -= COUNTER_MAX + 1  # rollover
        if rng.random() < 0.001:
            value = float(rng.integers(0, 10))  # a reset
        ts.append(t)
        v.append(np.nan if rng.random() < 0.02 else value)  # bad samples
    return Counter(np.array(ts, dtype=np.int64), np.array(v, dtype=np.float64))


@pytest.mark.parametrize("seed", range(6))
def test_inputs_over_spans_equal_span_by_span(seed: int) -> None:
    rng = np.random.default_rng(seed)
    start, end = T0, T0 + 4 * 24 * H
    planned = PlannedTime(CAL, "America/Toronto")
    intervals = random_intervals(rng, start, end)
    counters = [random_counter(rng, start - LOOKBACK, end), random_counter(rng, start - LOOKBACK, end),
                None if seed % 2 else random_counter(rng, start - LOOKBACK, end)]
    cuts = sorted(int(c) for c in rng.integers(start, end, size=4))
    gaps = Gaps(cuts=cuts, max_gap_us=None if seed % 3 == 0 else 5 * M)
    spans = [(s.start_us, s.end_us) for s in planned.shifts(start, end)]
    spans += [(start, end)]
    for _ in range(30):  # any spans: overlapping, tiny, in silences
        a = int(rng.integers(start, end - M))
        spans.append((a, min(a + int(rng.integers(1, 600)) * M, end)))
    got = inputs_over_spans(intervals, planned, spans, pri_s=2.0, produced=counters[0], good=counters[1],
                            reject=counters[2], counter_max=COUNTER_MAX, gaps=gaps, lookback_us=LOOKBACK)
    for (s, e), batch in zip(spans, got, strict=True):
        one = by_span(intervals, planned, s, e, counters, gaps)
        assert batch == pytest.approx(one), (s, e)  # counters are whole numbers: sums exact


def test_the_cases_that_differ_from_a_plain_sum_are_exercised() -> None:
    """The look-back rule matters: a span's first good sample after a silence longer than the look-back is a
    baseline, though the whole array's increments measure it from the sample before the silence."""
    c = Counter(np.array([0, 3 * H, 3 * H + M], dtype=np.int64), np.array([10.0, 15.0, 16.0]))
    whole = split(c.values, COUNTER_MAX, after_gap=gaps_before(c.ts)).units
    assert whole.tolist() == [0.0, 5.0, 1.0]  # measured across the silence
    (t,) = tallies(c, np.array([2 * H + 30 * M]), np.array([4 * H]), COUNTER_MAX, Gaps(), LOOKBACK)
    assert (t.units, t.gap_units, t.gap_resets) == (1.0, 0.0, 0)  # 15 is its baseline


def test_intersect_by_hand() -> None:
    a = (np.array([0, 10, 30]), np.array([5, 20, 40]))
    b = (np.array([3, 15]), np.array([12, 35]))
    s, e = intersect(*a, *b)
    assert list(zip(s.tolist(), e.tolist(), strict=True)) == [(3, 5), (10, 12), (15, 20), (30, 35)]
    assert intersect(np.array([], dtype=np.int64), np.array([], dtype=np.int64), *b)[0].size == 0
