"""OEE per ISO 22400-2: availability, effectiveness, quality rate, and the time lost to each.

* PBT  planned busy time (s)          APT  actual production time (s)
* PRI  planned run time per item (s)   PQ   produced quantity; GQ good quantity; SQ scrap quantity
* availability A = APT / PBT,  effectiveness E = PRI x PQ / APT,  quality rate QR = GQ / PQ,  OEE = A x E x QR

A ratio whose denominator is 0 is None (and so is OEE). Aggregates (line, site, several shifts) sum the
times and quantities, never average the ratios: see :func:`combine`. See docs/oee.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy.typing as npt

from plantlink.engines.calendar import PlannedTime, merge_intervals, overlap_us
from plantlink.engines.counters import count_between
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
    """

    pbt_s: float
    apt_s: float
    pri_s: float
    pq: float
    gq: float
    sq: float
    pri_pq_s: float | None = None
    pri_sq_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("pbt_s", "apt_s", "pri_s", "pq", "gq", "sq", "pri_pq_s", "pri_sq_s"):
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


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _warnings(inputs: OeeInputs, availability: float | None, effectiveness: float | None) -> list[str]:
    found: list[str] = []
    if effectiveness is not None and effectiveness > 1 + _TOLERANCE:
        found.append(
            f"effectiveness {effectiveness:.3f} exceeds 1: the planned run time per item (PRI {inputs.pri_s:g} s) "
            "is longer than the real cycle, or parts were counted outside running time"
        )
    if availability is not None and availability > 1 + _TOLERANCE:
        found.append(f"availability {availability:.3f} exceeds 1: actual production time exceeds planned busy time")
    if inputs.gq > inputs.pq * (1 + _TOLERANCE):
        found.append(f"good quantity {inputs.gq:g} exceeds produced quantity {inputs.pq:g}")
    if abs(inputs.gq + inputs.sq - inputs.pq) > _TOLERANCE * max(1.0, inputs.pq):
        found.append(f"good {inputs.gq:g} + scrap {inputs.sq:g} differ from produced {inputs.pq:g}")
    return found


def compute(inputs: OeeInputs) -> OeeResult:
    """The KPIs and loss times of one set of inputs. Effectiveness above 1 is kept (not clamped) and flagged."""
    availability = _ratio(inputs.apt_s, inputs.pbt_s)
    effectiveness = _ratio(inputs.ideal_run_s, inputs.apt_s)
    quality = _ratio(inputs.gq, inputs.pq)
    parts = (availability, effectiveness, quality)
    oee = None if None in parts else math.prod(p for p in parts if p is not None)
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


def _count(samples: Samples, start_us: int, end_us: int, counter_max: int) -> float:
    ts, values = samples
    return count_between(ts, values, start_us, end_us, counter_max)


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
) -> OeeInputs:
    """The OEE inputs of one machine over ``[start_us, end_us)``.

    PBT is the planned time in the range; APT the time in state running within it; PQ, GQ and SQ come from
    the counters (:func:`~plantlink.engines.counters.count_between` over the whole range). Without a good
    counter GQ = PQ - reject; without a reject counter SQ = PQ - GQ.
    """
    if end_us < start_us:
        raise ValueError(f"end_us ({end_us}) is before start_us ({start_us})")
    if good is None and reject is None:
        raise ValueError("give a good or a reject counter (or both): the other is derived from produced")
    pq = _count(produced, start_us, end_us, counter_max)
    rejected = None if reject is None else _count(reject, start_us, end_us, counter_max)
    if good is not None:
        gq = _count(good, start_us, end_us, counter_max)
    else:
        assert rejected is not None
        gq = max(pq - rejected, 0.0)
    sq = rejected if rejected is not None else max(pq - gq, 0.0)
    return OeeInputs(
        pbt_s=planned.planned_seconds(start_us, end_us),
        apt_s=running_planned_us(intervals, planned, start_us, end_us) / 1e6,
        pri_s=pri_s,
        pq=pq,
        gq=gq,
        sq=sq,
    )
