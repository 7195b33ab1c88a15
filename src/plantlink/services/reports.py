"""Shift, daily and weekly reports of a site, area, line or machine: one frozen :class:`Report` assembled from
the other services' answers, never recomputed here (its figures are the API's for the same scope and range).

* period: ``shift`` (the last shift of the site's calendar that ended at or before ``at``), ``day`` (the last
  whole local day: midnight to midnight in the site's zone) or ``week`` (the last whole local week, Monday
  00:00 to Monday 00:00); or an explicit ``[start, end)`` (``custom``). ``at`` is now unless given.
* OEE and its factors: ``kpi.oee``; the losses in money: ``kpi.line_costs`` of each line of the scope (a machine:
  its entry of its line's costs); the top reason: ``kpi`` (in the OEE report).
* downtime Pareto by reason: ``downtime.pareto`` of the line (a machine: of its line) or of the site (a site or
  an area), by machine for the machines at risk.
* alarm-system figures (EEMUA 191): ``alarms.performance_of`` for the scope's site; None (with a note) where
  the alarm system is not running (a report made from a data directory by the CLI).
* SPC capability: ``spc.chart`` of every tag of the scope with an ``spc:`` block that has specification limits
  (a tag whose chart cannot be made is listed with the reason).
* energy: ``energy.energy`` (kWh, kWh per good part); None when no machine of the scope has an energy tag.
* machines at risk: the machines of the scope with standing (stale) alarms or downtime, ranked by standing
  alarms, then lost time, with their OEE (the remaining-useful-life estimator needs a trained model per
  machine, which the runtime does not keep yet: it is not used).

A period in which the scope has no data at all (no planned time with a known state, no counted part, no stop,
no energy) is refused (``AnalysisError`` naming the scope and the period): no empty report is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from plantlink.analytics.capability import Capability
from plantlink.engines.calendar import to_us
from plantlink.engines.costs import CostOfLosses
from plantlink.errors import AnalysisError, QueryError
from plantlink.identity import Caller
from plantlink.samples import now_us
from plantlink.services.alarms import Alarms, Performance
from plantlink.services.downtime import DowntimeService, Pareto
from plantlink.services.energy import EnergyReport, EnergyService
from plantlink.services.kpi import CostReport, Figures, KpiService, OeeInputs, OeeReport
from plantlink.services.periods import Periods
from plantlink.services.plant import MachineRef, NotFound, PlantIndex, check_range
from plantlink.services.spc import SpcService

__all__ = ["PERIODS", "CapabilityRow", "LineCosts", "MachineRisk", "Report", "ReportService", "period_bounds"]

#: The report periods; ``custom`` is an explicit range.
PERIODS = ("shift", "day", "week")
DAY_US = 86400 * 1_000_000
MAX_RANGE_US = 31 * DAY_US
#: How many machines "at risk" a report lists.
AT_RISK = 5


@dataclass(frozen=True)
class LineCosts:
    """The money lost on the scope: each line's (``kpi.line_costs``) and their sum in one currency."""

    lines: tuple[CostReport, ...]
    #: The sum of the lines' totals when they share one currency (None: several currencies, or no line).
    total: CostOfLosses | None


@dataclass(frozen=True)
class CapabilityRow:
    tag: str
    capability: Capability | None
    #: Why there is no capability (the SPC service's error), else None.
    problem: str | None = None


@dataclass(frozen=True)
class MachineRisk:
    machine: str
    oee: float | None
    downtime_s: float
    stops: int
    standing_alarms: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """Everything a report shows, as the services answered it."""

    scope: str
    kind: str  # site, area, line or machine
    site: str
    timezone: str
    period: str  # shift, day, week or custom
    label: str  # e.g. "shift A of 2026-03-10", "2026-03-10", "week of 2026-03-09"
    start_us: int
    end_us: int
    generated_us: int
    oee: OeeReport
    costs: LineCosts
    pareto: Pareto
    pareto_of: str  # the line or site the Pareto is of
    alarms: Performance | None
    capability: tuple[CapabilityRow, ...]
    energy: EnergyReport | None
    at_risk: tuple[MachineRisk, ...]
    notes: tuple[str, ...] = ()


def period_bounds(periods: Periods, site: str, period: str, at_us: int) -> tuple[int, int, str]:
    """``[start, end)`` and a label of the last whole ``period`` (shift, day, week) ended at or before ``at_us``
    in the site's calendar and zone; ``QueryError`` (field ``period``) for another name or no shift."""
    if period not in PERIODS:
        raise QueryError(f"period must be one of {list(PERIODS)} (or give from and to), got {period!r}",
                         field="period")
    zone = ZoneInfo(periods.zones[site])
    if period == "shift":
        planned = periods.planned[site]
        for s in reversed(planned.shifts(at_us - 8 * DAY_US, at_us)):
            whole = planned.shift_at(s.start_us)
            if whole is not None and whole.start_us == s.start_us and whole.end_us <= at_us:
                return int(whole.start_us), int(whole.end_us), f"shift {whole.name} of {whole.day.isoformat()}"
        raise QueryError(f"site {site!r}: no shift of its calendar ended in the 8 days before "
                         f"{datetime.fromtimestamp(at_us / 1e6, zone).isoformat()}", field="period")
    today = datetime.fromtimestamp(at_us / 1e6, zone).date()
    if period == "day":
        first = today - timedelta(days=1)
        return _midnight(first, zone), _midnight(today, zone), first.isoformat()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(days=7)
    return _midnight(first, zone), _midnight(monday, zone), f"week of {first.isoformat()}"


def _midnight(day: date, zone: ZoneInfo) -> int:
    return to_us(datetime.combine(day, dtime(0, 0), tzinfo=zone))


class ReportService:
    """Assembles reports from the KPI, downtime, alarm, SPC and energy services."""

    def __init__(self, index: PlantIndex, periods: Periods, kpi: KpiService, downtime: DowntimeService,
                 alarms: Alarms, spc: SpcService, energy: EnergyService):
        self.index, self.periods, self.kpi, self.downtime = index, periods, kpi, downtime
        self.alarms, self.spc, self.energy = alarms, spc, energy

    def resolve(self, who: Caller, scope: str, period: str | None, *, start_us: int | None = None,
                end_us: int | None = None, at_us: int | None = None) -> tuple[str, int, int, str]:
        """(period, start, end, label) of a request: a named period, or ``start``/``end`` (``custom``)."""
        self.index.machines_under(who, scope)  # checks the scope and the rights first
        site = scope.strip("/").split("/", 1)[0]
        if start_us is not None or end_us is not None:
            if start_us is None or end_us is None:
                raise QueryError("give both from and to (or a period)", field="start" if start_us is None else "end")
            if period not in (None, "custom"):
                raise QueryError(f"give a period or from and to, not both (period {period!r})", field="period")
            check_range(start_us, end_us, MAX_RANGE_US, "report range")
            zone = ZoneInfo(self.periods.zones[site])
            label = " to ".join(datetime.fromtimestamp(x / 1e6, zone).isoformat() for x in (start_us, end_us))
            return "custom", start_us, end_us, label
        s, e, label = period_bounds(self.periods, site, period or "", now_us() if at_us is None else at_us)
        return period or "", s, e, label

    def report(self, who: Caller, scope: str, period: str | None = None, *, start_us: int | None = None,
               end_us: int | None = None, at_us: int | None = None, now: int | None = None) -> Report:
        """The report of ``scope`` over a period (see :meth:`resolve`)."""
        name, start, end, label = self.resolve(who, scope, period, start_us=start_us, end_us=end_us, at_us=at_us)
        scope = scope.strip("/")
        t = now_us() if now is None else now
        if start >= t:
            raise QueryError(f"the report period {label} has not begun yet", field="period")
        kind, ms = self.index.machines_under(who, scope)
        site = ms[0].site if ms else scope.split("/", 1)[0]
        notes: list[str] = []
        oee = self._oee(who, kind, scope, ms, start, end, t, notes)
        end = oee.end_us  # capped at now
        costs = self._costs(who, kind, scope, [m.line for m in ms], start, end, t)
        pareto_of = ms[0].line if kind in ("machine", "line") else site
        by = {"line": pareto_of} if kind in ("machine", "line") else {"site": site}
        pareto = self.downtime.pareto(who, "reason", start, end, **by)
        by_machine = self.downtime.pareto(who, "machine", start, end, **by)
        if kind == "machine":
            notes.append(f"The downtime Pareto is of the machine's line {pareto_of}.")
        elif kind == "area":
            notes.append(f"The downtime Pareto is of the site {site}.")
        alarms = self._alarms(site, start, end, t, notes)
        energy = self._energy(who, scope, start, end, t, notes)
        if self._empty(oee, pareto, energy):
            zone = ZoneInfo(self.periods.zones[site])
            raise AnalysisError(f"no data for {scope} in {label} ({_iso(start, zone)} to {_iso(end, zone)}): no "
                                "planned time with a known state, no part counted, no stop, no energy", "period")
        return Report(
            scope=scope, kind=kind, site=site, timezone=self.periods.zones[site], period=name, label=label,
            start_us=start, end_us=end, generated_us=t, oee=oee, costs=costs, pareto=pareto, pareto_of=pareto_of,
            alarms=alarms, capability=self._capability(who, [m.path for m in ms], start, end), energy=energy,
            at_risk=_at_risk(oee, by_machine, alarms, {m.path for m in ms}), notes=tuple(notes))

    # -- parts ---------------------------------------------------------------------------------------
    def _oee(self, who: Caller, kind: str, scope: str, ms: list[MachineRef], start: int, end: int, now: int,
             notes: list[str]) -> OeeReport:
        if kind == "machine" and ms[0].model.production is None:  # a conveyor: its stops and energy, no OEE
            notes.append(f"Machine {scope} has no production counters: no OEE.")
            return OeeReport(scope, kind, start, min(end, now), Figures.of(OeeInputs(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)))
        return self.kpi.oee(who, scope, start, end, now=now)

    def _costs(self, who: Caller, kind: str, scope: str, lines: list[str], start: int, end: int, now: int
               ) -> LineCosts:
        found = [self.kpi.line_costs(who, lp, start, end, now=now) for lp in dict.fromkeys(lines)]
        found = [c for c in found if c.configured]
        if kind == "machine":  # the machine's entry of its line's costs
            found = [dataclasses.replace(c, total=mine, machines=((scope, mine),)) for c in found
                     for mp, mine in c.machines if mp == scope]
        currencies = {c.total["currency"] for c in found}
        if len(currencies) != 1:
            return LineCosts(tuple(found), None)
        t = [c.total for c in found]
        total = CostOfLosses(
            availability_loss=sum(x["availability_loss"] for x in t),
            performance_loss=sum(x["performance_loss"] for x in t),
            quality_loss=sum(x["quality_loss"] for x in t), total=sum(x["total"] for x in t), currency=currencies.pop(),
            downtime_h=sum(x["downtime_h"] for x in t), parts_not_made=sum(x["parts_not_made"] for x in t),
            scrap_parts=sum(x["scrap_parts"] for x in t))
        return LineCosts(tuple(found), total)

    def _alarms(self, site: str, start: int, end: int, now: int, notes: list[str]) -> Performance | None:
        if not self.alarms.running:
            notes.append("Alarm-system figures need the running server (the alarm system is not running here).")
            return None
        return self.alarms.performance_of(start, min(end, now), [site])

    def _energy(self, who: Caller, scope: str, start: int, end: int, now: int, notes: list[str]
                ) -> EnergyReport | None:
        try:
            found, _ = self.energy.energy(who, scope, start, end, now=now)
        except NotFound:  # a machine without an energy tag
            return None
        except QueryError as exc:  # too many samples: the rest of the report still stands
            notes.append(f"Energy: {exc}")
            return None
        return found if found.total is not None else None

    def _capability(self, who: Caller, machines: list[str], start: int, end: int) -> tuple[CapabilityRow, ...]:
        wanted = set(machines)
        rows = []
        for path, info in self.index.tags.items():
            spc = info.tag.spc
            if f"{info.site}/{info.area}/{info.line}/{info.machine}" not in wanted or spc is None:
                continue
            if spc.lsl is None and spc.usl is None:
                continue
            try:
                chart = self.spc.chart(who, path, start, end, with_capability=True)
                rows.append(CapabilityRow(path, chart.capability))
            except AnalysisError as exc:
                rows.append(CapabilityRow(path, None, exc.reason))
            except QueryError as exc:  # too many samples in the period
                rows.append(CapabilityRow(path, None, str(exc)))
        return tuple(rows)

    @staticmethod
    def _empty(oee: OeeReport, pareto: Pareto, energy: EnergyReport | None) -> bool:
        i = oee.total.inputs
        measured = energy is not None and energy.total is not None and energy.total.measured_s > 0
        return i.pbt_s <= 0 and i.pq <= 0 and not pareto.rows and pareto.unknown.count == 0 and not measured


def _at_risk(oee: OeeReport, by_machine: Pareto, alarms: Performance | None, machines: set[str]
             ) -> tuple[MachineRisk, ...]:
    """The scope's machines with standing alarms or downtime: most standing alarms first, then most lost time."""
    figures = {m: f for m, f in oee.machines} or {oee.scope: oee.total}
    lost = {r.key: r for r in by_machine.rows if r.key in machines}
    standing: dict[str, list[str]] = {}
    for a in alarms.stale if alarms is not None else []:
        if a.get("machine") in machines:
            standing.setdefault(str(a["machine"]), []).append(str(a.get("name") or a.get("key")))
    out = []
    for m in sorted(set(lost) | set(standing)):
        assert m is not None
        row = lost.get(m)
        f = figures.get(m)
        out.append(MachineRisk(m, f.result.oee if f is not None else None, row.duration_s if row else 0.0,
                               row.count if row else 0, tuple(standing.get(m, ()))))
    out.sort(key=lambda r: (-len(r.standing_alarms), -r.downtime_s, r.machine))
    return tuple(out[:AT_RISK])


def _iso(us: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(us / 1e6, zone).isoformat(timespec="minutes")


def audit_details(r: Report, fmt: str, size: int, via: str) -> dict[str, object]:
    """The details of the ``export.report`` audit record of a rendered report."""
    return {"format": fmt, "period": r.period, "label": r.label, "start_us": r.start_us, "end_us": r.end_us,
            "bytes": size, "via": via}
