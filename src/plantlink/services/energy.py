"""Energy of a machine, line, area or site over a range (and per shift): kWh, kWh per good part, the energy
used while not producing (idle energy, a loss) and its cost. One computation for the API and the HMI.

* The energy comes from each machine's ``energy`` tag (plant model: a power tag or a meter), read from the
  historian over ``[start, end)`` with the last sample before ``start``, however old (the value holding at the
  start, or the meter reading opening its first interval), and a meter also up to ``LOOKAHEAD`` after the end,
  capped at now, to attribute its last reading's share; bad-quality samples are gaps. ``engines.energy`` does
  the rest.
* States are the store's state intervals, as the OEE uses them; good parts are the GQ of the OEE inputs
  (:meth:`KpiService.oee_spans`: the same counters and gap rules, read once for every span).
* A line, area or site sums its machines' kWh. Its kWh per good part divides the kWh of the machines that
  have production counters by their good parts summed (as OEE sums quantities: a part made on three machines
  counts three times); machines without counters (conveyors) are in the kWh, not in that ratio.
* Cost: each machine's kWh at its line's ``costs.energy_per_kwh`` (0 or no ``costs``: no price, cost None).
  A scope whose lines use different currencies has no total cost.
* A machine without an ``energy`` section: asked alone, 404 (``NotFound``, as OEE without counters); in a
  wider scope it is listed in ``without_energy``, and a scope where no machine has one has no figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from plantlink.engines.energy import (
    EnergyInputs,
    EnergyResult,
    Profile,
    StateInterval,
    combine,
    compute,
    from_meter,
    from_power,
    split_by_state,
)
from plantlink.errors import PlantlinkError, QueryError
from plantlink.identity import Caller
from plantlink.model.production import METER_UNITS, POWER_UNITS, Energy
from plantlink.samples import Quality, now_us
from plantlink.services.deps import SampleReader, StateRecords
from plantlink.services.kpi import OeeReport
from plantlink.services.plant import MachineRef, NotFound, PlantIndex, check_range

__all__ = ["EnergyInputs", "EnergyReport", "EnergyResult", "EnergyService", "MachineEnergy"]

LOOKAHEAD_US = 3600 * 1_000_000
MAX_RANGE_US = 93 * 86400 * 1_000_000
MAX_SAMPLES = 5_000_000


class _Kpi(Protocol):  # what the service calls of KpiService
    def oee_spans(self, who: Caller, scope: str, start_us: int, end_us: int,
                  spans: Sequence[tuple[int, int, Mapping[str, Any]]], *, now: int | None = None
                  ) -> tuple[OeeReport, list[OeeReport]]: ...


@dataclass(frozen=True)
class MachineEnergy:
    machine: str
    inputs: EnergyInputs
    result: EnergyResult
    currency: str | None


@dataclass(frozen=True)
class EnergyReport:
    scope: str
    kind: str  # machine, line, area or site
    start_us: int
    end_us: int
    #: None when no machine of the scope has an energy tag.
    total: EnergyInputs | None
    result: EnergyResult | None
    currency: str | None
    machines: tuple[MachineEnergy, ...] = ()
    without_energy: tuple[str, ...] = ()
    shift: str | None = None
    day: str | None = None


@dataclass(frozen=True)
class _Data:
    profile: Profile
    intervals: list[StateInterval]


class EnergyService:
    def __init__(self, index: PlantIndex, kpi: _Kpi, samples: Callable[[], SampleReader | None],
                 records: Callable[[], StateRecords | None]):
        self.index, self.kpi, self._samples, self._records = index, kpi, samples, records

    def energy(self, who: Caller, scope: str, start_us: int, end_us: int, *, by_shift: bool = False,
               now: int | None = None) -> tuple[EnergyReport, list[EnergyReport]]:
        """Energy of a scope over ``[start, min(end, now))`` and, with ``by_shift``, of each shift occurrence
        of the site's calendar overlapping it."""
        check_range(start_us, end_us, MAX_RANGE_US)
        kind, ms = self.index.machines_under(who, scope)
        if kind == "machine" and ms[0].model.energy is None:
            raise NotFound(f"machine {scope.strip('/')!r} has no energy tag (no `energy:` section in the plant "
                           "model): no energy figures", field="scope")
        t = now_us() if now is None else now
        end = min(end_us, t)
        site = scope.strip("/").split("/", 1)[0]
        spans = [(s.start_us, s.end_us, {"shift": s.name, "day": s.day.isoformat()})
                 for s in self.index.planned[site].shifts(start_us, end_us)] if by_shift else []
        whole, parts = self.kpi.oee_spans(who, scope, start_us, end_us, spans, now=t)
        data = self._read(ms, start_us, end, t)
        total = self._report(scope.strip("/"), kind, ms, data, whole, start_us, end)
        shifts = [self._report(scope.strip("/"), kind, ms, data, rep, max(s, start_us), min(e, end), **extra)
                  for (s, e, extra), rep in zip(spans, parts, strict=True) if min(e, end) > max(s, start_us)]
        return total, shifts

    # -- figures -----------------------------------------------------------------------------------
    def _report(self, scope: str, kind: str, ms: list[MachineRef], data: dict[str, _Data], oee: OeeReport,
                start: int, end: int, **extra: Any) -> EnergyReport:
        goods = {mp: f.inputs.gq for mp, f in oee.machines} if kind != "machine" else \
            {ms[0].path: oee.total.inputs.gq}
        each = []
        for m in ms:
            if m.path not in data:
                continue
            good = goods.get(m.path) if m.model.production is not None else None
            inputs = split_by_state(data[m.path].profile, data[m.path].intervals, start, end, good)
            price, currency = self._price(m)
            each.append(MachineEnergy(m.path, inputs, compute(inputs, price), currency))
        without = tuple(m.path for m in ms if m.model.energy is None)
        if not each:
            return EnergyReport(scope, kind, start, end, None, None, None, (), without, **extra)
        total = combine(e.inputs for e in each)
        result = compute(total)
        counted = [e.inputs for e in each if e.inputs.good is not None]
        per_part = compute(combine(counted))
        currencies = {e.currency for e in each if e.currency is not None}
        priced = len(currencies) == 1 and all(e.result.cost is not None for e in each)
        result = dataclasses.replace(
            result, kwh_per_good_part=per_part.kwh_per_good_part,
            running_kwh_per_good_part=per_part.running_kwh_per_good_part,
            cost=sum(e.result.cost or 0.0 for e in each) if priced else None,
            idle_cost=sum(e.result.idle_cost or 0.0 for e in each) if priced else None)
        return EnergyReport(scope, kind, start, end, total, result, currencies.pop() if priced else None,
                            tuple(each) if kind != "machine" else (), without, **extra)

    def _price(self, m: MachineRef) -> tuple[float | None, str | None]:
        costs = self.index.lines[m.line].model.costs
        if costs is None or costs.energy_per_kwh <= 0:
            return None, None
        return costs.energy_per_kwh, costs.currency

    # -- reads -------------------------------------------------------------------------------------
    def _read(self, ms: list[MachineRef], start: int, end: int, now: int) -> dict[str, _Data]:
        """Each machine with an energy tag: its power profile and state intervals over the range."""
        metered = [m for m in ms if m.model.energy is not None]
        records = self._records()
        if not metered or end <= start:
            return {m.path: _Data(from_power([], [], end), []) for m in metered}
        by_machine: dict[str, list[StateInterval]] = {m.path: [] for m in metered}
        cuts: list[int] = []
        if records is not None:
            for iv in records.intervals(start, end, machines=list(by_machine), open_until=now):
                by_machine[iv.machine].append((iv.start_us, iv.end_us if iv.end_us is not None else end, iv.state))
        series = {m.path: self._series(m, start, end, now) for m in metered}
        if records is not None:
            first = min([start] + [int(ts[0]) for ts, _ in series.values() if ts.size])
            cuts = records.cuts(first, min(end + LOOKAHEAD_US, now))
        return {m.path: _Data(self._profile(m, series[m.path], end, cuts), by_machine[m.path]) for m in metered}

    def _profile(self, m: MachineRef, series: tuple[np.ndarray, np.ndarray], end: int, cuts: list[int]
                 ) -> Profile:
        spec, name = _spec(m)
        tag = next(t for t in m.model.tags if t.name == name)
        factor = POWER_UNITS[tag.unit] if spec.power is not None else METER_UNITS[tag.unit]
        max_gap = None if spec.max_gap is None else round(spec.max_gap * 1e6)
        ts, v = series
        if spec.power is not None:
            return from_power(ts, v * factor, end, cuts=cuts, max_gap_us=max_gap)
        wrap = None if spec.meter_wrap is None else spec.meter_wrap * factor
        return from_meter(ts, v * factor, wrap=wrap, cuts=cuts, max_gap_us=max_gap)

    def _series(self, m: MachineRef, start: int, end: int, now: int) -> tuple[np.ndarray, np.ndarray]:
        """The energy tag's samples in ``[start, end)`` (a meter's up to ``LOOKAHEAD`` later, capped at now),
        after the last one before ``start`` whatever its age; a bad one as NaN."""
        spec, name = _spec(m)
        read_to = end if spec.power is not None else min(end + LOOKAHEAD_US, now)
        tid = self.index.ids.get(f"{m.path}/{name}")
        hist = self._samples()
        if tid is None or hist is None:
            raise PlantlinkError(f"machine {m.path}: energy tag {name!r} is not in the historian")
        t = hist.raw(tid, start, read_to, MAX_SAMPLES + 1)
        if t.num_rows > MAX_SAMPLES:
            raise QueryError(f"more than {MAX_SAMPLES} energy samples in the range: shorten it", field="end")
        before = hist.last_before(tid, start)
        t = pa.concat_tables([before.select(t.schema.names).cast(t.schema), t])
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        v = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        q = t.column("quality").to_numpy(zero_copy_only=False)
        return ts, np.where(q >= Quality.UNCERTAIN, v, np.nan)


def _spec(m: MachineRef) -> tuple[Energy, str]:
    spec = m.model.energy
    assert spec is not None
    name = spec.power if spec.power is not None else spec.meter
    assert name is not None
    return spec, name
