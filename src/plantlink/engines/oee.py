"""OEE per ISO 22400-2: availability, effectiveness, quality rate, and the time lost to each.

* PBT  planned busy time (s)          APT  actual production time (s)
* PRI  planned run time per item (s)   PQ   produced quantity; GQ good quantity; SQ scrap quantity
* availability A = APT / PBT,  effectiveness E = PRI x PQ / APT,  quality rate QR = GQ / PQ,  OEE = A x E x QR

A ratio whose denominator is 0 is None (and so is OEE). Aggregates (line, site, several shifts) sum the
times and quantities, never average the ratios: see :func:`combine`. A ratio above 1 is a data problem
(``OeeResult.data_problem``): kept, never clamped, and explained in ``warnings``. Units a counter advanced
across a gap in the data (plantlink stopped, device disconnected, bad quality) are not in PQ / GQ / SQ but
reported apart (``gap_pq`` ...). See docs/oee.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy.typing as npt

from plantlink.engines.calendar import PlannedTime, merge_intervals, overlap_us
from plantlink.engines.counters import Cuts, Tally, tally_between
from plantlink.model.production import STATES

#: A counter's samples: (timestamps in us, values).
Samples = tuple[npt.ArrayLike, npt.ArrayLike]
#: A machine state interval: (start_us, end_us, state name or code in STATES).
StateInterval = tuple[int, int, str | int | None]

_RUNNING = "running"
_RUNNING_CODE = STATES.index(_RUNNING)
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class OeeInputs:
    """The ISO 22400-2 elements of one machine over one period (times in seconds, quantities in units).

    ``pri_pq_s`` and ``pri_sq_s`` are only set by :func:`combine`: the sums of PRI_i x PQ_i and PRI_i x SQ_i
    of machines with different PRI. Left None, they are ``pri_s x pq`` and ``pri_s x sq``.

    ``gap_pq``, ``gap_gq`` and ``gap_sq`` are units the counters advanced across gaps in the data, when no run
    time was counted for them: reported, never part of the KPIs. ``gap_resets`` counts counter decreases across
    gaps (a reset or a replaced device while nobody watched: what was made then is unknown).
    """

    pbt_s: float
    apt_s: float
    pri_s: float
    pq: float
    gq: float
    sq: float
    pri_pq_s: float | None = None
    pri_sq_s: float | None = None
    gap_pq: float = 0.0
    gap_gq: float = 0.0
    gap_sq: float = 0.0
    gap_resets: float = 0.0

    def __post_init__(self) -> None:
        for name in ("pbt_s", "apt_s", "pri_s", "pq", "gq", "sq", "pri_pq_s", "pri_sq_s", "gap_pq", "gap_gq",
                     "gap_sq", "gap_resets"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"OeeInputs.{name} must be a finite number >= 0, got {value!r}")

    @property
    def ideal_run_s(self) -> float:
        """PRI x PQ: the time the produced quantity takes at the planned rate."""
        return self.pri_s * self.pq if self.pri_pq_s is None else self.pri_pq_s

    @property
    def ideal_scrap_s(self) -> float:
        """PRI x SQ: the time spent at the planned rate making scrap."""
        return self.pri_s * self.sq if self.pri_sq_s is None else self.pri_sq_s


@dataclass(frozen=True)
class OeeResult:
    availability: float | None
    effectiveness: float | None
    quality_rate: float | None
    oee: float | None
    #: PBT - APT: planned time the machine was not running (faults, stops, changeovers, ...).
    availability_loss_s: float
    #: APT - PRI x PQ: running time that made no part at the planned rate (slow cycles, micro-stops).
    performance_loss_s: float
    #: PRI x SQ: time spent making scrap.
    quality_loss_s: float
    #: PRI x GQ: what remains of PBT after the three losses.
    fully_productive_s: float
    warnings: list[str] = field(default_factory=list)
    #: What else a reader should know: units counted across gaps in the data, reported apart.
    notes: list[str] = field(default_factory=list)
    #: A ratio is above 1 (effectiveness, availability or quality rate): the inputs are wrong (a PRI set too
    #: long, parts counted outside running time); show it as a data problem, never as a plain percentage.
    data_problem: bool = False


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _above_one(ratio: float | None) -> bool:
    return ratio is not None and ratio > 1 + _TOLERANCE


def _warnings(inputs: OeeInputs, availability: float | None, effectiveness: float | None) -> list[str]:
    found: list[str] = []
    if effectiveness is not None and _above_one(effectiveness):
        found.append(
            f"effectiveness {effectiveness:.3f} exceeds 1: the planned run time per item (PRI {inputs.pri_s:g} s) "
            "is longer than the real cycle, or parts were counted outside running time"
        )
    if availability is not None and _above_one(availability):
        found.append(f"availability {availability:.3f} exceeds 1: actual production time exceeds planned busy time")
    if inputs.gq > inputs.pq * (1 + _TOLERANCE):
        found.append(f"good quantity {inputs.gq:g} exceeds produced quantity {inputs.pq:g}")
    if abs(inputs.gq + inputs.sq - inputs.pq) > _TOLERANCE * max(1.0, inputs.pq):
        found.append(f"good {inputs.gq:g} + scrap {inputs.sq:g} differ from produced {inputs.pq:g}")
    return found


def _notes(inputs: OeeInputs) -> list[str]:
    found = []
    if inputs.gap_pq > 0:
        found.append(f"{inputs.gap_pq:g} unit(s) were counted across gaps in the data (plantlink stopped, device "
                     "disconnected, bad quality): reported apart, not in OEE")
    if inputs.gap_resets > 0:
        found.append(f"{inputs.gap_resets:g} counter(s) went back across a gap in the data: what was made then "
                     "is unknown")
    return found


def compute(inputs: OeeInputs) -> OeeResult:
    """The KPIs and loss times of one set of inputs. Effectiveness above 1 is kept (not clamped) and flagged."""
    availability = _ratio(inputs.apt_s, inputs.pbt_s)
    effectiveness = _ratio(inputs.ideal_run_s, inputs.apt_s)
    quality = _ratio(inputs.gq, inputs.pq)
    parts = (availability, effectiveness, quality)
    oee = None if None in parts else math.prod(p for p in parts if p is not None)
    problem = any(_above_one(p) for p in parts)
    return OeeResult(
        availability=availability,
        effectiveness=effectiveness,
        quality_rate=quality,
        oee=oee,
        availability_loss_s=inputs.pbt_s - inputs.apt_s,
        performance_loss_s=inputs.apt_s - inputs.ideal_run_s,
        quality_loss_s=inputs.ideal_scrap_s,
        fully_productive_s=inputs.ideal_run_s - inputs.ideal_scrap_s,
        warnings=_warnings(inputs, availability, effectiveness),
        notes=_notes(inputs),
        data_problem=problem,
    )


def combine(items: Iterable[OeeInputs]) -> OeeInputs:
    """Aggregate several machines or periods: times and quantities are summed, PRI x PQ is summed per item
    (machines may have different PRI). ``pri_s`` of the result is the PQ-weighted mean PRI (the plain mean
    when nothing was produced). No items give all zeros, so every ratio is None."""
    items = list(items)
    pq = sum(i.pq for i in items)
    pri_pq = sum(i.ideal_run_s for i in items)
    mean_pri = sum(i.pri_s for i in items) / len(items) if items else 0.0
    pri = pri_pq / pq if pq > 0 else mean_pri
    return OeeInputs(
        pbt_s=sum(i.pbt_s for i in items),
        apt_s=sum(i.apt_s for i in items),
        pri_s=pri,
        pq=pq,
        gq=sum(i.gq for i in items),
        sq=sum(i.sq for i in items),
        pri_pq_s=pri_pq,
        pri_sq_s=sum(i.ideal_scrap_s for i in items),
        gap_pq=sum(i.gap_pq for i in items),
        gap_gq=sum(i.gap_gq for i in items),
        gap_sq=sum(i.gap_sq for i in items),
        gap_resets=sum(i.gap_resets for i in items),
    )


def _is_running(state: str | int | None) -> bool:
    if state is None:
        return False
    if isinstance(state, str):
        if state not in STATES and state != "unknown":
            raise ValueError(f"unknown machine state {state!r}; expected one of {', '.join(STATES)} or 'unknown'")
        return state == _RUNNING
    if state >= len(STATES):
        raise ValueError(f"unknown machine state code {state}; codes are 0..{len(STATES) - 1} (negative = unknown)")
    return state == _RUNNING_CODE


def running_planned_us(intervals: Sequence[StateInterval], planned: PlannedTime, start_us: int, end_us: int) -> int:
    """Microseconds in state running within planned busy time and within ``[start_us, end_us)``."""
    running = [(s, e) for s, e, state in intervals if _is_running(state)]
    run_s, run_e = merge_intervals([r[0] for r in running], [r[1] for r in running])
    plan_s, plan_e = planned.planned_arrays(start_us, end_us)
    return int(overlap_us(run_s, run_e, plan_s, plan_e).sum())


@dataclass(frozen=True)
class Gaps:
    """Where a machine's counter samples are not continuous, besides bad samples (see ``engines.counters``):
    the restarts of plantlink (cut instants), and the longest normal time between two samples."""

    cuts: Cuts | None = None
    max_gap_us: int | None = None


def _count(samples: Samples, start_us: int, end_us: int, counter_max: int, gaps: Gaps) -> Tally:
    ts, values = samples
    return tally_between(ts, values, start_us, end_us, counter_max, cuts=gaps.cuts, max_gap_us=gaps.max_gap_us)


def inputs_from_states(
    intervals: Sequence[StateInterval],
    planned: PlannedTime,
    start_us: int,
    end_us: int,
    *,
    pri_s: float,
    produced: Samples,
    good: Samples | None = None,
    reject: Samples | None = None,
    counter_max: int = 2**32 - 1,
    gaps: Gaps | None = None,
) -> OeeInputs:
    """The OEE inputs of one machine over ``[start_us, end_us)``.

    PBT is the planned time in the range; APT the time in state running within it; PQ, GQ and SQ come from
    the counters (:func:`~plantlink.engines.counters.tally_between` over the whole range): production only,
    what a counter advanced across a gap goes to ``gap_pq`` / ``gap_gq`` / ``gap_sq``. Without a good
    counter GQ = PQ - reject; without a reject counter SQ = PQ - GQ.
    """
    if end_us < start_us:
        raise ValueError(f"end_us ({end_us}) is before start_us ({start_us})")
    if good is None and reject is None:
        raise ValueError("give a good or a reject counter (or both): the other is derived from produced")
    g = gaps or Gaps()
    pq = _count(produced, start_us, end_us, counter_max, g)
    rejected = None if reject is None else _count(reject, start_us, end_us, counter_max, g)
    good_t = None if good is None else _count(good, start_us, end_us, counter_max, g)
    return inputs_from_tallies(planned.planned_seconds(start_us, end_us),
                               running_planned_us(intervals, planned, start_us, end_us) / 1e6, pri_s, pq, good_t,
                               rejected)


def inputs_from_tallies(pbt_s: float, apt_s: float, pri_s: float, pq: Tally, good: Tally | None,
                        reject: Tally | None) -> OeeInputs:
    """The OEE inputs from the times and the counters' tallies over a range (see :func:`inputs_from_states`)."""
    gq, gap_gq = _derived(pq, good, reject)
    sq, gap_sq = _derived(pq, reject, good)
    resets = sum(t.gap_resets for t in (pq, good, reject) if t is not None)
    return OeeInputs(pbt_s=pbt_s, apt_s=apt_s, pri_s=pri_s, pq=pq.units, gq=gq, sq=sq, gap_pq=pq.gap_units,
                     gap_gq=gap_gq, gap_sq=gap_sq, gap_resets=float(resets))


def _derived(produced: Tally, own: Tally | None, other: Tally | None) -> tuple[float, float]:
    """(units, gap units) of a quantity from its own counter, else produced minus the other quantity."""
    if own is not None:
        return own.units, own.gap_units
    assert other is not None
    return max(produced.units - other.units, 0.0), max(produced.gap_units - other.gap_units, 0.0)
