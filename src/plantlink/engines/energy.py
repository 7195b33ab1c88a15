"""Energy of a machine: kWh over a range split by machine state, kWh per good part, idle energy as a loss.

Both kinds of energy tag become one **profile**: disjoint segments ``[start, end)`` of constant power (kW).

* A **power** tag (kW) is a step function (zero-order hold): each good sample's value holds until the next
  sample. Step, not trapezoid, because plantlink records values by exception (a deadband, OPC UA data
  changes): an unchanged value is not sent again, so the recorded value IS the value until the next one; a
  trapezoid would ramp across a long steady stretch ending in a step change (a machine going from running to
  idle) and put running energy into idle time. A value holds at most ``max_gap_us`` (when given), never
  across a cut (plantlink stopped: see ``engines.counters``), and a bad sample (NaN) holds nothing: that time
  is **not measured** (``unmeasured_s``), never integrated.
* A **meter** tag (kWh, cumulative) gives the increments of ``engines.counters.split`` (rollover at
  ``wrap``, a decrease otherwise a reset counted from 0); each increment is spread evenly between its two
  samples (average power). What the meter advanced across a gap (a bad sample, a cut, two samples further
  apart than ``max_gap_us``) is ``gap_kwh``: reported apart, not attributed to any state.

The profile is then cut by the machine's state intervals (the store's, as the OEE uses): energy in
``running`` is producing energy; in any other known state (idle, starved, blocked, faulted, planned_stop,
changeover) it is **idle energy**, a loss; measured energy where the state is unknown (no interval, bad
inputs) is ``unknown_state_kwh``, in the total but in neither. kWh per good part = total kWh / GQ, with GQ
from the OEE inputs (the same counters, the same gap rules). Aggregates sum kWh and parts, never mean ratios.
See docs/energy.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from plantlink.engines.calendar import merge_intervals
from plantlink.engines.counters import gaps_before, split
from plantlink.model.production import STATES

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: (start_us, end_us, state name or code in STATES; None or "unknown": unknown).
StateInterval = tuple[int, int, str | int | None]

US_PER_H = 3600e6
RUNNING = "running"
#: Without a wrap a meter never rolls over: any decrease is a reset (split's rollover test never holds).
_NO_WRAP = 2.0**62
_ROUNDING = 1e-9


@dataclass(frozen=True)
class Profile:
    """Piecewise-constant power: segment i is ``[starts[i], ends[i])`` at ``kw[i]`` (disjoint, ascending)."""

    starts: IntArray
    ends: IntArray
    kw: FloatArray
    #: Meter increments across gaps (not attributed to any time), and decreases across gaps (unknown).
    gap_kwh: float = 0.0
    gap_resets: int = 0

    @cached_property
    def _knots(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Segment bounds, and the kWh and measured us accumulated at each: built once per profile."""
        x = np.empty(2 * self.starts.size, dtype=np.float64)
        x[0::2], x[1::2] = self.starts, self.ends
        energy, covered = np.zeros_like(x), np.zeros_like(x)
        for y, step in ((energy, self.kw * (self.ends - self.starts) / US_PER_H),
                        (covered, (self.ends - self.starts).astype(np.float64))):
            y[1::2] = np.cumsum(step)
            y[2::2] = y[1:-1:2]
        return x, energy, covered

    def _at(self, at_us: npt.ArrayLike, which: int) -> FloatArray:
        at = np.asarray(at_us, dtype=np.float64)
        if self.starts.size == 0:
            return np.zeros(at.shape)
        x = self._knots[0]
        return np.interp(at, x, self._knots[which])

    def cumulative(self, at_us: npt.ArrayLike) -> FloatArray:
        """kWh from the profile's beginning up to each instant of ``at_us``."""
        return self._at(at_us, 1)

    def covered(self, at_us: npt.ArrayLike) -> FloatArray:
        """Measured microseconds from the profile's beginning up to each instant of ``at_us``."""
        return self._at(at_us, 2)

    def kwh_in(self, starts: npt.ArrayLike, ends: npt.ArrayLike) -> float:
        """kWh within the union of the intervals ``[starts[i], ends[i])``."""
        s, e = merge_intervals(starts, ends)
        return float((self.cumulative(e) - self.cumulative(s)).sum())

    def measured_us_in(self, start_us: int, end_us: int) -> float:
        got = self.covered([start_us, end_us])
        return float(got[1] - got[0])


def _samples(ts_us: npt.ArrayLike, values: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    ts = np.asarray(ts_us, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != v.shape:
        raise ValueError(f"timestamps and values must be one-dimensional and of equal length, got {ts.shape} "
                         f"and {v.shape}")
    if ts.size > 1 and bool(np.any(ts[1:] < ts[:-1])):
        raise ValueError("energy samples must be sorted by time")
    return ts, v


def _cap_at_cuts(ts: IntArray, ends: IntArray, cuts: npt.ArrayLike | None) -> IntArray:
    """``ends`` cut back to the first cut at or after each sample's time."""
    if cuts is None:
        return ends
    c = np.sort(np.asarray(cuts, dtype=np.int64))
    if c.size == 0:
        return ends
    k = np.searchsorted(c, ts, side="left")
    has = k < c.size
    first = c[np.minimum(k, c.size - 1)]
    return np.where(has, np.minimum(ends, first), ends)


def from_power(ts_us: npt.ArrayLike, kw: npt.ArrayLike, until_us: int, *, cuts: npt.ArrayLike | None = None,
               max_gap_us: int | None = None) -> Profile:
    """The profile of power samples (kW; NaN = bad): each value holds to the next sample (the last one to
    ``until_us``), at most ``max_gap_us``, never across a cut."""
    ts, v = _samples(ts_us, kw)
    if ts.size == 0:
        return Profile(ts, ts.copy(), v)
    ends = np.append(ts[1:], max(until_us, int(ts[-1])))
    if max_gap_us is not None:
        ends = np.minimum(ends, ts + max_gap_us)
    ends = _cap_at_cuts(ts, ends, cuts)
    keep = np.isfinite(v) & (ends > ts)
    return Profile(ts[keep], ends[keep], v[keep])


def from_meter(ts_us: npt.ArrayLike, kwh: npt.ArrayLike, *, wrap: float | None = None,
               cuts: npt.ArrayLike | None = None, max_gap_us: int | None = None) -> Profile:
    """The profile of a cumulative meter (kWh; NaN = bad): each increment within a continuous stretch spread
    evenly between its two samples; increments across gaps go to ``gap_kwh``."""
    ts, v = _samples(ts_us, kwh)
    after_gap = gaps_before(ts, cuts=cuts, max_gap_us=max_gap_us)
    parts = split(v, (wrap - 1.0) if wrap is not None else _NO_WRAP, after_gap=after_gap)
    good = np.flatnonzero(np.isfinite(v))
    a, b = good[:-1], good[1:]
    continuous = (b == a + 1) & ~after_gap[b]
    dt = ts[b] - ts[a]
    seg = continuous & (dt > 0)
    # an increment between two samples stamped at the same instant has no time to sit in: reported apart
    instant = float(parts.units[b][continuous & (dt == 0)].sum())
    kw = parts.units[b][seg] * US_PER_H / dt[seg]
    return Profile(ts[a][seg], ts[b][seg], kw.astype(np.float64),
                   gap_kwh=float(parts.gap.sum()) + instant, gap_resets=int(parts.gap_reset.sum()))


def state_name(state: str | int | None) -> str:
    """The state's name, ``unknown`` for None, a negative code or "unknown"."""
    if state is None:
        return "unknown"
    if isinstance(state, str):
        if state not in STATES and state != "unknown":
            raise ValueError(f"unknown machine state {state!r}; expected one of {', '.join(STATES)} or 'unknown'")
        return state
    if state >= len(STATES):
        raise ValueError(f"unknown machine state code {state}; codes are 0..{len(STATES) - 1} (negative = unknown)")
    return STATES[state] if state >= 0 else "unknown"


@dataclass(frozen=True)
class EnergyInputs:
    """Energy of one machine (or several, summed) over a range; kWh, seconds, parts."""

    #: kWh per known state (running, idle, ...), measured energy only.
    by_state: dict[str, float] = field(default_factory=dict)
    #: Measured energy where the machine's state is unknown (no interval, bad inputs).
    unknown_state_kwh: float = 0.0
    #: Meter increments across gaps in the data: reported apart, in no figure.
    gap_kwh: float = 0.0
    gap_resets: int = 0
    measured_s: float = 0.0
    unmeasured_s: float = 0.0
    #: Good parts (GQ of the OEE inputs); None: the machine has no production counters.
    good: float | None = None

    @property
    def running_kwh(self) -> float:
        return self.by_state.get(RUNNING, 0.0)

    @property
    def idle_kwh(self) -> float:
        return sum(v for k, v in self.by_state.items() if k != RUNNING)

    @property
    def total_kwh(self) -> float:
        return sum(self.by_state.values()) + self.unknown_state_kwh


def split_by_state(profile: Profile, intervals: Sequence[StateInterval], start_us: int, end_us: int,
                   good: float | None = None) -> EnergyInputs:
    """The profile's energy in ``[start_us, end_us)`` by machine state (intervals clipped to the range)."""
    if end_us < start_us:
        raise ValueError(f"end_us ({end_us}) is before start_us ({start_us})")
    grouped: dict[str, tuple[list[int], list[int]]] = {}
    for s, e, st in intervals:
        lo, hi = max(s, start_us), min(e, end_us)
        name = state_name(st)
        if hi > lo and name != "unknown":
            grouped.setdefault(name, ([], []))[0].append(lo)
            grouped[name][1].append(hi)
    by_state = {name: profile.kwh_in(ss, ee) for name, (ss, ee) in grouped.items()}
    total = profile.kwh_in([start_us], [end_us])
    measured = profile.measured_us_in(start_us, end_us) / 1e6
    unknown = total - sum(by_state.values())
    if unknown <= _ROUNDING * max(abs(total), 1.0):  # float rounding of the difference, not energy
        unknown = 0.0
    return EnergyInputs(by_state=by_state, unknown_state_kwh=unknown,
                        gap_kwh=profile.gap_kwh, gap_resets=profile.gap_resets, measured_s=measured,
                        unmeasured_s=max((end_us - start_us) / 1e6 - measured, 0.0), good=good)


def combine(items: Iterable[EnergyInputs]) -> EnergyInputs:
    """Sum several machines or periods: kWh, seconds and parts add (good: None when no item has counters)."""
    items = list(items)
    by_state: dict[str, float] = {}
    for i in items:
        for k, v in i.by_state.items():
            by_state[k] = by_state.get(k, 0.0) + v
    goods = [i.good for i in items if i.good is not None]
    return EnergyInputs(by_state=by_state, unknown_state_kwh=sum(i.unknown_state_kwh for i in items),
                        gap_kwh=sum(i.gap_kwh for i in items), gap_resets=sum(i.gap_resets for i in items),
                        measured_s=sum(i.measured_s for i in items), unmeasured_s=sum(i.unmeasured_s for i in items),
                        good=sum(goods) if goods else None)


@dataclass(frozen=True)
class EnergyResult:
    total_kwh: float
    running_kwh: float
    #: Energy in known states other than running: a loss.
    idle_kwh: float
    #: idle / (running + idle); None when neither has energy.
    idle_share: float | None
    #: total kWh / good parts; None without counters or without good parts.
    kwh_per_good_part: float | None
    #: running kWh / good parts: what a part takes while producing (the rest of kwh_per_good_part is idle).
    running_kwh_per_good_part: float | None
    #: At the price per kWh (None without a price).
    cost: float | None
    idle_cost: float | None
    notes: list[str] = field(default_factory=list)


def compute(inputs: EnergyInputs, price_per_kwh: float | None = None) -> EnergyResult:
    """The figures of one set of inputs: kWh per good part, idle energy and its cost."""
    if price_per_kwh is not None and not (math.isfinite(price_per_kwh) and price_per_kwh >= 0):
        raise ValueError(f"price_per_kwh must be a finite number >= 0, got {price_per_kwh!r}")
    known = inputs.running_kwh + inputs.idle_kwh
    per_part = inputs.total_kwh / inputs.good if inputs.good else None
    running_per_part = inputs.running_kwh / inputs.good if inputs.good else None
    notes = []
    if inputs.gap_kwh > 0:
        notes.append(f"{inputs.gap_kwh:g} kWh were metered across gaps in the data: reported apart, in no figure")
    if inputs.unmeasured_s > 0:
        notes.append(f"{inputs.unmeasured_s:g} s without a usable energy reading: not integrated")
    if inputs.unknown_state_kwh > 0:
        notes.append(f"{inputs.unknown_state_kwh:g} kWh while the machine's state was unknown: in the total only")
    return EnergyResult(
        total_kwh=inputs.total_kwh, running_kwh=inputs.running_kwh, idle_kwh=inputs.idle_kwh,
        idle_share=inputs.idle_kwh / known if known > 0 else None, kwh_per_good_part=per_part,
        running_kwh_per_good_part=running_per_part,
        cost=None if price_per_kwh is None else inputs.total_kwh * price_per_kwh,
        idle_cost=None if price_per_kwh is None else inputs.idle_kwh * price_per_kwh, notes=notes)
