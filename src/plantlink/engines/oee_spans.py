"""The OEE inputs of one machine over many spans at once (a month by shift: 90 spans), from its data over a range
holding them all: one pass over the whole range's arrays, read at the span edges, instead of one computation
per span. :func:`inputs_over_spans` answers exactly what :func:`~plantlink.engines.oee.inputs_from_states`
answers span by span on the same data clipped to each span (its tests compare the two).

Times: the planned time, the running time and the time in a known state within it are overlaps of merged
interval sets with each span (``calendar.overlap_us`` over all spans at once). Counters: the increments of every
sample (``counters.split`` over the whole array) summed between the span's first and last sample by cumulative
sums. A span's first good sample is measured from the last good sample before it only if that one is within
``lookback_us`` before the span (as a span's own read would see it); otherwise it is a baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantlink.engines.calendar import PlannedTime, merge_intervals, overlap_us
from plantlink.engines.counters import Tally, gaps_before, split
from plantlink.engines.oee import Gaps, OeeInputs, inputs_from_tallies

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Counter:
    """A counter's samples over the range and ``lookback_us`` before it (time order; bad samples NaN)."""

    ts: IntArray
    values: npt.NDArray[np.float64]


def intersect(a_s: IntArray, a_e: IntArray, b_s: IntArray, b_e: IntArray) -> tuple[IntArray, IntArray]:
    """The intersection of two merged interval sets (sorted, disjoint), merged."""
    if a_s.size == 0 or b_s.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo = np.searchsorted(b_e, a_s, side="right")  # the first b ending after a starts
    hi = np.searchsorted(b_s, a_e, side="left")  # past the last b starting before a ends
    n = np.maximum(hi - lo, 0)
    ia = np.repeat(np.arange(a_s.size), n)
    ib = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
    s, e = np.maximum(a_s[ia], b_s[ib]), np.minimum(a_e[ia], b_e[ib])
    keep = e > s
    return merge_intervals(s[keep], e[keep])


def _merged(intervals: Sequence[tuple[int, int, str]], keep: object) -> tuple[IntArray, IntArray]:
    chosen = [(s, e) for s, e, st in intervals if keep(st)]  # type: ignore[operator]
    return merge_intervals([s for s, _ in chosen], [e for _, e in chosen])


def _covered_s(sets: tuple[IntArray, IntArray], starts: IntArray, ends: IntArray) -> npt.NDArray[np.float64]:
    return overlap_us(sets[0], sets[1], starts, ends).astype(np.float64) / 1e6


def tallies(c: Counter, starts: IntArray, ends: IntArray, counter_max: int, gaps: Gaps, lookback_us: int
            ) -> list[Tally]:
    """The counter's tally over each span ``[starts[i], ends[i])`` (as ``counters.tally_between`` on the samples
    within ``lookback_us`` before the span and in it)."""
    ts, v = c.ts, c.values
    part = split(v, counter_max, after_gap=gaps_before(ts, cuts=gaps.cuts, max_gap_us=gaps.max_gap_us))
    sums = [np.concatenate(([0.0], np.cumsum(a, dtype=np.float64))) for a in
            (part.units, part.gap, part.gap_reset.astype(np.float64))]
    lo = np.searchsorted(ts, starts, side="left")
    hi = np.searchsorted(ts, ends, side="left")
    window = np.searchsorted(ts, starts - lookback_us, side="left")  # a span's own read starts here
    good = np.isfinite(v)
    idx = np.arange(v.size)
    last_good = np.maximum.accumulate(np.where(good, idx, -1)) if v.size else idx  # at or before each sample
    next_good = np.minimum.accumulate(np.where(good, idx, v.size)[::-1])[::-1] if v.size else idx
    out = []
    for i in range(starts.size):
        a, b = int(lo[i]), int(hi[i])
        if b <= a:
            out.append(Tally(0.0, 0.0, 0))
            continue
        units, gap, resets = (float(x[b] - x[a]) for x in sums)
        f = int(next_good[a]) if a < v.size else v.size  # the span's first good sample
        if f < b:
            before = int(last_good[f - 1]) if f > 0 else -1
            if before < int(window[i]):  # nothing good in the span's look-back: f is a baseline
                units -= float(part.units[f])
                gap -= float(part.gap[f])
                resets -= float(part.gap_reset[f])
        out.append(Tally(units, gap, round(resets)))
    return out


def inputs_over_spans(intervals: Sequence[tuple[int, int, str]], planned: PlannedTime,
                      spans: Sequence[tuple[int, int]], *, pri_s: float, produced: Counter,
                      good: Counter | None, reject: Counter | None, counter_max: int, gaps: Gaps, lookback_us: int
                      ) -> list[OeeInputs]:
    """The OEE inputs of each span (non-empty, inside the range of ``intervals`` and the counters), with PBT
    the planned time in a known state minus planned stops (as ``KpiService.machine_inputs``)."""
    if not spans:
        return []
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    plan = planned.planned_arrays(int(starts.min()), int(ends.max()))
    running = intersect(*_merged(intervals, lambda st: st == "running"), *plan)
    stopped = intersect(*_merged(intervals, lambda st: st == "planned_stop"), *plan)
    known = intersect(*_merged(intervals, lambda st: st != "unknown"), *plan)
    apt, pstop, pknown = (_covered_s(x, starts, ends) for x in (running, stopped, known))
    pq = tallies(produced, starts, ends, counter_max, gaps, lookback_us)
    gq = None if good is None else tallies(good, starts, ends, counter_max, gaps, lookback_us)
    rq = None if reject is None else tallies(reject, starts, ends, counter_max, gaps, lookback_us)
    return [inputs_from_tallies(max(float(pknown[i] - pstop[i]), 0.0), float(apt[i]), pri_s, pq[i],
                                None if gq is None else gq[i], None if rq is None else rq[i])
            for i in range(starts.size)]
