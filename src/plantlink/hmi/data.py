"""The HMI's read model: thin views over the service layer (``plantlink.services``), the one place the pages
get data from. It never touches the runtime, a store, an engine or the historian (an import contract checks
it); the figures are the services', so the HMI shows what the API answers.

Every function here is plain, synchronous Python (pages call the slow ones through ``asyncio.to_thread``),
except ``confirm``. The first argument is the ``Services`` the HMI was mounted with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantlink.display import value_text
from plantlink.errors import NotFound
from plantlink.identity import Principal, Role
from plantlink.samples import now_us
from plantlink.services import Services
from plantlink.services.alarms import AlarmActionError, AlarmView, alarm_counts, worst_by_machine
from plantlink.services.audit import AuditRecord, VerifyResult, can_read_audit
from plantlink.services.control import InterlockStatus, Outcome, Setpoint, Staged
from plantlink.services.kpi import Figures, OeeReport, TopLoss, TopReason, combined, cost_of
from plantlink.services.periods import PERIODS

if TYPE_CHECKING:
    from plantlink.model.schema import Line, Machine, Site
    from plantlink.services.alarms import JournalEntry
    from plantlink.services.annotations import Annotation
    from plantlink.services.downtime import DowntimeEvent
    from plantlink.services.kpi import Analysis, CostOfLosses, OeeInputs, OeeResult
    from plantlink.services.states import Interval
    from plantlink.services.trends import Marks
    from plantlink.services.trendviews import TrendView

__all__ = ["PERIODS", "READER", "AlarmView", "Kpi", "LineView", "MachineView", "NotFound", "PlantView", "Setpoint",
           "SiteView", "TagView", "alarm_counts", "can_read_audit", "worst_by_machine"]

#: Who the server-side live cache reads as (every site); pages show a user only the sites they may see.
READER = Principal("hmi-live-cache", {"*": "viewer"})


@dataclass(frozen=True)
class TagView:
    path: str
    name: str
    unit: str
    type: str
    tag_id: int
    writable: bool
    #: what people read (the model's display_name, else the name), the float decimals, the codes' words
    label: str = ""
    decimals: int | None = None
    texts: Mapping[int, str] = field(default_factory=dict)

    def text(self, value: float | str | bool | None, reason: str | None = None) -> str:
        return value_text(value, self.unit, self.type, reason, decimals=self.decimals, texts=self.texts)


@dataclass(frozen=True)
class MachineView:
    path: str
    name: str
    kind: str
    description: str
    site: str
    line: str
    tags: list[TagView]
    has_states: bool
    model: Machine = field(repr=False)


@dataclass(frozen=True)
class LineView:
    path: str
    name: str
    area: str
    site: str
    description: str
    machines: list[MachineView]
    model: Line = field(repr=False)


@dataclass(frozen=True)
class SiteView:
    name: str
    description: str
    timezone: str
    lines: list[LineView]
    model: Site = field(repr=False)


@dataclass(frozen=True)
class Kpi:
    """OEE figures of a machine or a line over a period, as the API computes them (``services.kpi``):
    ``top_loss`` is the largest OEE loss, ``top_reason`` the stop reason that lost the most time; ``cost``
    only for lines with costs."""

    figures: Figures
    top_loss: TopLoss | None
    top_reason: TopReason | None
    cost: CostOfLosses | None = None

    @property
    def inputs(self) -> OeeInputs:
        return self.figures.inputs

    @property
    def result(self) -> OeeResult:
        return self.figures.result

    @property
    def parts(self) -> float:
        return self.figures.parts


class PlantView:
    """The hierarchy of the plant as pages show it, built from the services' one plant index."""

    def __init__(self, services: Services):
        self.services = services
        idx = services.plant
        self.enterprise = idx.enterprise
        self.sites: list[SiteView] = [self._site(s) for s in idx.sites.values()]
        self.lines = {ln.path: ln for s in self.sites for ln in s.lines}
        self.machines = {m.path: m for ln in self.lines.values() for m in ln.machines}
        self.tags = {t.path: t for m in self.machines.values() for t in m.tags}

    def _site(self, s: Site) -> SiteView:
        idx = self.services.plant
        lines = []
        for lp, ref in idx.lines.items():
            if ref.site == s.name:
                lines.append(LineView(lp, ref.name, ref.area, s.name, ref.model.description,
                                      [self._machine(mp) for mp in ref.machines], ref.model))
        return SiteView(s.name, s.description, s.timezone, lines, s)

    def _machine(self, path: str) -> MachineView:
        ref = self.services.plant.machines[path]
        ids, m = self.services.tags.ids, ref.model
        tags = [TagView(f"{path}/{t.name}", t.name, t.unit, t.type, ids[f"{path}/{t.name}"], t.writable, t.label,
                        t.decimals, dict(t.value_texts))
                for t in m.tags if f"{path}/{t.name}" in ids]
        return MachineView(path, m.name, m.kind, m.description, ref.site, ref.line, tags, m.states is not None, m)

    # -- lookups ----------------------------------------------------------------------------------
    def visible_sites(self, principal: Principal) -> list[SiteView]:
        allowed = set(principal.sites([s.name for s in self.sites]))
        return [s for s in self.sites if s.name in allowed]

    def line(self, path: str) -> LineView:
        try:
            return self.lines[path]
        except KeyError:
            raise NotFound(f"no line {path!r} in the plant model") from None

    def machine(self, path: str) -> MachineView:
        try:
            return self.machines[path]
        except KeyError:
            raise NotFound(f"no machine {path!r} in the plant model") from None

    def site(self, name: str) -> SiteView:
        for s in self.sites:
            if s.name == name:
                return s
        raise NotFound(f"no site {name!r} in the plant model")

    # -- periods ----------------------------------------------------------------------------------
    def period(self, site: str, period: str, end_us: int | None = None) -> tuple[int, int]:
        """``[start, end)`` of a named period (see PERIODS) ending now: the services' one rule."""
        self.site(site)
        return self.services.periods.bounds(site, period, end_us)


# -- live -----------------------------------------------------------------------------------------
def machine_states(svc: Services) -> dict[str, tuple[str, int]]:
    """Each machine's current state and since when (machines without state rules are absent)."""
    return svc.states.current()


# -- OEE ------------------------------------------------------------------------------------------
def line_kpis(view: PlantView, ln: LineView, start: int, end: int, who: Principal = READER) -> dict[str, Kpi | None]:
    """OEE of each machine of the line with production counters and of the line (times and quantities summed),
    with the top loss and top reason of each and the cost of the line's losses; absent machines have no OEE."""
    kpi = view.services.kpi
    found = kpi.oee(who, ln.path, start, end)
    out: dict[str, Kpi | None] = {m.path: None for m in ln.machines}
    for mp, f in found.machines:
        out[mp] = Kpi(f, f.top_loss, found.reasons.get(mp))
    if found.machines:
        cost = cost_of(found.total, ln.model.costs) if ln.model.costs is not None else None
        out[ln.path] = Kpi(found.total, found.total.top_loss, found.reasons.get(found.scope), cost)
    else:
        out[ln.path] = None
    return out


# -- OEE over time -------------------------------------------------------------------------------
def days(svc: Services, site: str, start: int, end: int) -> list[tuple[int, int]]:
    """The site's local days overlapping ``[start, min(end, now))``, clipped to it (the site's zone: the day
    starts at local midnight, 23 or 25 h long at a DST change)."""
    stop, out = min(end, now_us()), []
    day = svc.periods.midnight(site, start)
    while day < stop:
        nxt = svc.periods.midnight(site, day + 36 * 3600 * 1_000_000)  # the next local midnight
        out.append((max(day, start), min(nxt, stop)))
        day = nxt
    return out


def oee_over_time(svc: Services, who: Principal, scope: str, start: int, end: int, by: str
                  ) -> tuple[OeeReport, list[OeeReport]]:
    """OEE of ``scope`` over the range (the API's ``/oee``) and per shift (``/oee/shifts``; shifts not begun
    yet left out) or per local day (``/oee`` over each day), each machine's data read once."""
    site = scope.strip("/").split("/", 1)[0]
    if by == "shift":
        spans = [(s.start_us, s.end_us, {"shift": s.name, "day": s.day.isoformat()})
                 for s in svc.plant.planned[site].shifts(start, end) if s.start_us < now_us()]
    else:
        spans = [(s, e, {}) for s, e in days(svc, site, start, end)]
    return svc.kpi.oee_spans(who, scope, start, end, spans)


def losses_money(view: PlantView, report: OeeReport) -> dict[str, float]:
    """The money lost in a report, per currency (see :func:`money_of`)."""
    return money_of(view, report.machines or ((report.scope, report.total),))


def money_of(view: PlantView, pairs: Sequence[tuple[str, Figures]]) -> dict[str, float]:
    """The money lost by machines (path, figures), per currency: each line's machines combined at the line's
    ``costs`` (as ``/lines/costs``); lines without costs count nothing."""
    out: dict[str, float] = {}
    for lp, found in _by_line(pairs).items():
        costs = view.lines[lp].model.costs
        total = combined(f.inputs for _, f in found)
        if costs is not None and total is not None:
            c = cost_of(total, costs)
            out[c["currency"]] = out.get(c["currency"], 0.0) + c["total"]
    return out


def _by_line(pairs: Sequence[tuple[str, Figures]]) -> dict[str, list[tuple[str, Figures]]]:
    out: dict[str, list[tuple[str, Figures]]] = {}
    for mp, f in pairs:
        out.setdefault(mp.rsplit("/", 1)[0], []).append((mp, f))
    return out


def compared(view: PlantView, report: OeeReport) -> tuple[list[tuple[str, Figures, dict[str, float]]], ...]:
    """Machine against machine and line against line in one report over a range: (path, figures, money) of each
    machine and of each line (its machines' inputs summed, as the API's line scope does); lines only for a
    site or an area."""
    machines = [(mp, f, money_of(view, [(mp, f)])) for mp, f in report.machines]
    lines = [(lp, total, money_of(view, found)) for lp, found in _by_line(report.machines).items()
             if (total := combined(f.inputs for _, f in found)) is not None]
    return machines, (lines if report.kind in ("site", "area") else [])


# -- line analysis --------------------------------------------------------------------------------
def pareto(svc: Services, who: Principal, line: str, by: str, start: int, end: int) -> dict[str, Any]:
    """Lost time by reason, machine or shift (rows with key, group, count, duration_s, cumulative)."""
    p = svc.downtime.pareto(who, by, start, end, line=line)
    return {"by": p.by, "rows": [dict(r.__dict__, micro=dict(r.micro.__dict__)) for r in p.rows],
            "total": dict(p.total.__dict__), "micro": dict(p.micro.__dict__), "unknown": dict(p.unknown.__dict__)}


def bottleneck_of(view: PlantView, who: Principal, line: str, start: int, end: int) -> Analysis | None:
    """The line's constraint by the active-period method, with its evidence; None without state rules."""
    if not any(m.has_states for m in view.line(line).machines):
        return None
    return view.services.kpi.bottleneck(who, line, start, end)


# -- machine --------------------------------------------------------------------------------------
def history(svc: Services, who: Principal, tag_id: int, start: int, end: int, n_out: int = 800
            ) -> tuple[list[int], list[float | None]]:
    """Downsampled (MinMaxLTTB) history of a numeric tag: timestamps in ms and values."""
    if end <= start:
        return [], []
    t = svc.history.downsample(who, tag_id, start, end, n_out).table
    ts = [int(x) // 1000 for x in t.column("ts").cast("int64").to_pylist()]
    vals = [v if v is not None and v == v and abs(v) != float("inf") else None for v in t.column("value").to_pylist()]
    return ts, vals


def trend_marks(svc: Services, who: Principal, machine: str, start: int, end: int) -> Marks:
    """Alarm activations and downtime events of the machine over the range (a trend's marks)."""
    return svc.trends.marks(who, machine, start, end)


def trend_notes(svc: Services, who: Principal, machine: str, start: int, end: int) -> list[Annotation]:
    """The notes on the machine's trend overlapping the range, oldest first."""
    return svc.annotations.list(who, machine, start, end)


def add_annotation(svc: Services, who: Principal, machine: str, text: str, start: int, end: int | None
                   ) -> Annotation:
    return svc.annotations.add(who, machine, text, start, end)


def delete_annotation(svc: Services, who: Principal, annotation_id: int) -> Annotation:
    return svc.annotations.delete(who, annotation_id)


def trend_views(svc: Services, who: Principal, machine: str) -> list[TrendView]:
    return svc.views.views(who, machine)


def save_trend_view(svc: Services, who: Principal, machine: str, name: str, pens: Sequence[str],
                    span_s: int | None, start: int | None, end: int | None, shared: bool) -> TrendView:
    return svc.views.save(who, machine, name, pens, span_s=span_s, start_us=start, end_us=end, shared=shared)


def delete_trend_view(svc: Services, who: Principal, view_id: int) -> TrendView:
    return svc.views.delete_view(who, view_id)


def timeline(svc: Services, who: Principal, machine: str, start: int, end: int) -> list[Interval]:
    """The machine's state intervals overlapping the range (the open one ends at ``end``)."""
    return svc.states.intervals(who, machine, start, end, open_until=end)


def events(svc: Services, who: Principal, machine: str, limit: int = 30, *, start_us: int | None = None,
           end_us: int | None = None) -> list[DowntimeEvent]:
    """The machine's latest downtime events (in ``[start, end)`` when given), newest first (micro-stops included,
    flagged)."""
    return list(svc.downtime.events(who, machine=machine, limit=limit, start_us=start_us, end_us=end_us).items)


def reason_tree(svc: Services, who: Principal, line: str) -> dict[str, list[str]]:
    return svc.downtime.reasons(who, line)


def assign_reason(svc: Services, who: Principal, event_id: int, group: str, reason: str) -> DowntimeEvent:
    """Record an operator's reason for a stop (operator rights at the site; checked against the reason tree)."""
    return svc.downtime.assign_reason(who, event_id, reason, group=group)


# -- alarms ---------------------------------------------------------------------------------------
def alarm_sites(svc: Services, who: Principal, role: Role = "viewer") -> list[str]:
    """The sites of the plant where ``who`` has at least ``role``."""
    return svc.alarms.sites(who, role)


def active_alarms(svc: Services, who: Principal, *, sites: Sequence[str] | None = None,
                  priorities: Sequence[str] | None = None, states: Sequence[str] | None = None) -> list[AlarmView]:
    """Annunciated alarms (or those in ``states``) at the sites ``who`` may see, critical first, newest first."""
    return svc.alarms.active(who, sites=sites, priorities=priorities, states=states)


async def acknowledge(svc: Services, who: Principal, keys: Sequence[str], comment: str | None) -> list[str]:
    return await svc.alarms.acknowledge(who, keys, comment)


async def shelve(svc: Services, who: Principal, key: str, minutes: float, reason: str) -> int:
    return await svc.alarms.shelve(who, key, minutes, reason)


async def unshelve(svc: Services, who: Principal, key: str) -> str:
    return await svc.alarms.unshelve(who, key)


async def set_out_of_service(svc: Services, who: Principal, key: str, out: bool, comment: str) -> str:
    """Take an alarm out of service (``out``) or return it, with a comment (the HMI requires one)."""
    if not comment.strip():
        raise AlarmActionError("a comment is required", 422)
    return await svc.alarms.out_of_service(who, key, out, comment.strip())


def alarm_limit(svc: Services, key: str, unit: str = "") -> str:
    """The limit of an alarm as shown beside its value (empty when the definition is not known)."""
    defn = svc.alarms.definition(key)
    return defn.limit_text(unit) if defn is not None else ""


def alarm_journal(svc: Services, who: Principal, sites: Sequence[str] | None = None,
                  limit: int = 100) -> list[JournalEntry]:
    return svc.alarms.journal(who, sites, limit)


def alarm_performance(svc: Services, who: Principal, window_s: int) -> dict[str, Any] | None:
    """EEMUA 191 figures over the last ``window_s`` seconds for the sites ``who`` may view (None: no alarms)."""
    perf = svc.alarms.performance(who, window_s)
    return None if perf is None else perf.to_dict()


def failed_deliveries(svc: Services, who: Principal, limit: int = 50) -> list[dict[str, Any]]:
    return [r.to_dict() for r in svc.alarms.failed_deliveries(who, limit)]


# -- control --------------------------------------------------------------------------------------
def setpoints(view: PlantView, machine: MachineView) -> list[Setpoint]:
    return view.services.control.setpoints(machine.path)


def interlocks_now(svc: Services, sp: Setpoint) -> list[InterlockStatus]:
    return svc.control.interlocks_now(sp)


async def stage(svc: Services, who: Principal, path: str, value: Any) -> Staged:
    return await svc.control.stage(who, path, value)


async def confirm(svc: Services, who: Principal, staged_id: str) -> Outcome:
    return await svc.control.confirm(who, staged_id)


def approvals(svc: Services, who: Principal, machine: str | None = None) -> list[Staged]:
    return svc.control.approvals(who, machine)


async def approve(svc: Services, who: Principal, staged_id: str) -> Staged:
    return await svc.control.approve(who, staged_id)


async def reject(svc: Services, who: Principal, staged_id: str, note: str = "") -> Staged:
    return await svc.control.reject(who, staged_id, note)


def my_staged(svc: Services, who: Principal, staged_id: str) -> Staged | None:
    return svc.control.mine(who, staged_id)


# -- audit (admins) -------------------------------------------------------------------------------
def audit_records(svc: Services, who: Principal, *, start_us: int | None = None, end_us: int | None = None,
                  actor: str | None = None, kind: str | None = None, site: str | None = None,
                  limit: int = 200) -> list[AuditRecord]:
    return svc.audit.records(who, start_us=start_us, end_us=end_us, actor=actor, kind=kind, site=site, limit=limit)


def audit_verify(svc: Services, who: Principal) -> VerifyResult | None:
    return svc.audit.verify(who)
