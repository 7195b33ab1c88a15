"""Which machine constrains a line: the active-period method (Roser, Nakano, Tanaka 2001, 2002).

A machine is *active* while it is not waiting: every state but ``starved`` and ``blocked`` (running, idle,
faulted, changeover all keep the line waiting for this machine). ``planned_stop``, ``unknown`` and time
without any recorded interval are not analysed: they interrupt an active period and count for no one.

* Average active period: the mean length of a machine's uninterrupted active periods. The machine with the
  longest average is the line's bottleneck (it is the one others wait for).
* Momentary bottleneck: at each instant, the active machine whose current active period is the longest.
  Where the active periods of two consecutive momentary bottlenecks overlap, the bottleneck is *shifting*
  between them: both are counted as shifting bottleneck for that time, neither as sole bottleneck.

Periods cut by the ends of the analysed range are taken as they are inside it.

``analyse`` answers an ``Analysis`` (frozen; ``dataclasses.asdict`` gives the API's JSON, in field order).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from plantlink.model import Plant
    from plantlink.store import Interval, Store

WAITING = frozenset({"starved", "blocked"})
NOT_ANALYSED = frozenset({"planned_stop", "unknown"})
METHOD = ("active-period method (Roser et al.): active = not starved and not blocked; the machine with the "
          "longest average uninterrupted active period constrains the line")


@dataclass(frozen=True)
class MachineFigures:
    """One machine's evidence over the analysed range (shares and momentary figures: of the range)."""

    shares: dict[str, float]  # per state, and "no_data"
    seconds: dict[str, float]  # per state
    active_share: float
    active_periods: int
    mean_active_s: float
    longest_active_s: float
    momentary_sole: float
    momentary_shifting: float
    explanation: str


@dataclass(frozen=True)
class Analysis:
    """The line's constraint over [start_us, end_us), with every machine's evidence."""

    line: str
    start_us: int
    end_us: int
    period_s: float
    method: str
    bottleneck: str | None  # None: no machine was active
    ranking: tuple[str, ...]  # by mean active period, longest first
    explanation: str
    machines: dict[str, MachineFigures]
    #: machines whose average active period equals the longest (to the second): a tie, no single constraint
    tied: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Period:
    machine: int
    start_us: int
    end_us: int

    @property
    def length(self) -> int:
        return self.end_us - self.start_us


def active_periods(intervals: list[Interval]) -> list[tuple[int, int]]:
    """Merge one machine's clipped, ordered intervals into uninterrupted active periods."""
    out: list[tuple[int, int]] = []
    for iv in intervals:
        if iv.end_us is None or iv.state in WAITING or iv.state in NOT_ANALYSED:
            continue
        if out and out[-1][1] == iv.start_us:
            out[-1] = (out[-1][0], iv.end_us)
        else:
            out.append((iv.start_us, iv.end_us))
    return out


def momentary(periods: list[_Period], n_machines: int) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds each machine was the sole and the shifting momentary bottleneck."""
    sole = np.zeros(n_machines, dtype=np.int64)
    shifting = np.zeros(n_machines, dtype=np.int64)
    if not periods:
        return sole, shifting
    bounds = np.unique(np.array([p.start_us for p in periods] + [p.end_us for p in periods], dtype=np.int64))
    seg_lo, seg_hi = bounds[:-1], bounds[1:]
    # for every segment, the longest active period covering it (periods never cross a boundary mid-segment)
    best = np.full(seg_lo.size, -1, dtype=np.int64)
    best_len = np.zeros(seg_lo.size, dtype=np.int64)
    for idx, p in enumerate(periods):
        lo, hi = np.searchsorted(seg_lo, p.start_us), np.searchsorted(seg_lo, p.end_us)
        better = best_len[lo:hi] < p.length
        best[lo:hi][better] = idx
        best_len[lo:hi][better] = p.length
    spans: list[int] = []  # period index of each run of segments with the same bottleneck period
    for idx in best.tolist():
        if idx >= 0 and (not spans or spans[-1] != idx):
            spans.append(idx)
    shift_mask = np.zeros((n_machines, seg_lo.size), dtype=bool)
    for a, b in itertools.pairwise(spans):
        p_a, p_b = periods[a], periods[b]
        if p_a.machine == p_b.machine:
            continue
        o_lo, o_hi = max(p_a.start_us, p_b.start_us), min(p_a.end_us, p_b.end_us)
        if o_hi > o_lo:
            inside = (seg_lo >= o_lo) & (seg_hi <= o_hi)
            shift_mask[p_a.machine] |= inside
            shift_mask[p_b.machine] |= inside
    seg_len = seg_hi - seg_lo
    any_shift = shift_mask.any(axis=0)
    shifting[:] = (shift_mask * seg_len).sum(axis=1)
    owner = np.array([periods[i].machine if i >= 0 else -1 for i in best.tolist()], dtype=np.int64)
    for m in range(n_machines):
        sole[m] = int(seg_len[(owner == m) & ~any_shift].sum())
    return sole, shifting


def _machines_of(plant: Plant, line: str) -> list[str]:
    return [p for p, m in plant.machines() if p.rsplit("/", 1)[0] == line and m.states is not None]


def analyse(store: Store, plant: Plant, line: str, start_us: int, end_us: int,
            now_us: int | None = None) -> Analysis:
    """Per-machine state shares and the line's constraint over [start_us, end_us), with evidence."""
    if end_us <= start_us:
        raise ValueError(f"empty or reversed period: start_us {start_us}, end_us {end_us}")
    machines = _machines_of(plant, line)
    if not machines:
        raise ValueError(f"line {line!r} has no machine with state rules (known lines: "
                         f"{', '.join(sorted({p.rsplit('/', 1)[0] for p, _ in plant.machines()}))})")
    by_machine: dict[str, list[Interval]] = defaultdict(list)
    for iv in store.intervals(start_us, end_us, machines=machines, open_until=now_us):
        by_machine[iv.machine].append(iv)
    period_us = end_us - start_us
    periods: list[_Period] = []
    actives = []
    for i, m in enumerate(machines):
        act = active_periods(by_machine[m])
        periods.extend(_Period(i, s, e) for s, e in act)
        actives.append(act)
    sole, shifting = momentary(periods, len(machines))
    figures = {m: _figures(by_machine[m], actives[i], period_us, float(sole[i]) / period_us,
                           float(shifting[i]) / period_us) for i, m in enumerate(machines)}
    return _verdict(line, start_us, end_us, figures)


def _figures(ivs: list[Interval], act: list[tuple[int, int]], period_us: int, sole: float,
             shifting: float) -> MachineFigures:
    spent: dict[str, int] = defaultdict(int)
    for iv in ivs:
        if iv.end_us is not None:
            spent[iv.state] += iv.end_us - iv.start_us
    lengths = [e - s for s, e in act]
    shares = {s: v / period_us for s, v in sorted(spent.items())}
    shares["no_data"] = max(period_us - sum(spent.values()), 0) / period_us
    active_share = sum(lengths) / period_us
    mean = (sum(lengths) / len(lengths) / 1e6) if lengths else 0.0
    longest = max(lengths) / 1e6 if lengths else 0.0
    explanation = (f"active {active_share:.0%} of the time in {len(lengths)} periods averaging {mean:.0f} s "
                   f"(longest {longest:.0f} s); starved {shares.get('starved', 0):.0%}, blocked "
                   f"{shares.get('blocked', 0):.0%}; momentary bottleneck {sole:.0%} alone, {shifting:.0%} shifting")
    return MachineFigures(shares, {s: v / 1e6 for s, v in sorted(spent.items())}, active_share, len(lengths), mean,
                          longest, sole, shifting, explanation)


def _verdict(line: str, start_us: int, end_us: int, figures: dict[str, MachineFigures]) -> Analysis:
    ranked = sorted(figures, key=lambda m: -figures[m].mean_active_s)
    top = ranked[0] if ranked and figures[ranked[0]].active_periods else None
    tied: tuple[str, ...] = ()
    if top is None:
        text = "no machine of the line was active in this period: no bottleneck"
    else:
        f = figures[top]
        tied = tuple(m for m in ranked if figures[m].active_periods
                     and round(figures[m].mean_active_s) == round(f.mean_active_s))
        if len(tied) > 1:
            names = " and ".join(_name(m) for m in tied)
            text = (f"{names} tie: their average uninterrupted active periods are equal ({f.mean_active_s:.0f} s); "
                    "the line has no single constraint in this period")
        else:
            tied = ()
            nxt = (f"; next: {_name(ranked[1])}, {figures[ranked[1]].mean_active_s:.0f} s" if len(ranked) > 1 else "")
            text = (f"{_name(top)} constrains the line: its average uninterrupted active period, "
                    f"{f.mean_active_s:.0f} s, is the longest{nxt}; it was the sole momentary bottleneck "
                    f"{f.momentary_sole:.0%} of the time")
    return Analysis(line, start_us, end_us, (end_us - start_us) / 1e6, METHOD, top, tuple(ranked), text, figures,
                    tied)


def _name(machine: str) -> str:
    """A machine as people name it in a sentence: its own name, not its path."""
    return machine.rsplit("/", 1)[-1]
