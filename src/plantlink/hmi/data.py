"""The HMI's read model over a running ``Runtime``: the one place the pages get data from.

Every function here is plain, synchronous Python (pages call the slow ones through ``asyncio.to_thread``).
When ``plantlink.api.queries`` offers the same figure, the function here delegates to it: switching the HMI
to the API's service layer happens in this module only.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from plantlink.api import queries
from plantlink.audit import AuditRecord
from plantlink.audit.log import VerifyResult
from plantlink.control.interlock import Interlock, InterlockStatus
from plantlink.control.records import ControlRefused, Outcome, Reason, Staged
from plantlink.engines import costs, oee
from plantlink.engines.alarms.isa import AlarmActionError
from plantlink.engines.calendar import PlannedTime, to_us
from plantlink.errors import NotFound
from plantlink.identity import ALL_SITES, Principal, Role
from plantlink.model.alarms import PRIORITIES
from plantlink.samples import now_us

if TYPE_CHECKING:
    from plantlink.control.service import ControlService
    from plantlink.engines.alarms.engine import AlarmEngine, AlarmView
    from plantlink.engines.alarms.service import AlarmService
    from plantlink.model.control import WriteSpec
    from plantlink.model.production import Costs
    from plantlink.model.schema import Line, Machine, Site
    from plantlink.runtime import Runtime
    from plantlink.store import DowntimeEvent, Interval
    from plantlink.store.alarm_repo import JournalEntry

#: Who the server-side live cache reads as (every site); pages show a user only the sites they may see.
READER = Principal("hmi-live-cache", {"*": "viewer"})
PERIODS: dict[str, str] = {"today": "Today", "shift": "Current shift", "8h": "Last 8 h", "24h": "Last 24 h",
                           "7d": "Last 7 days"}


@dataclass(frozen=True)
class TagView:
    path: str
    name: str
    unit: str
    type: str
    tag_id: int
    writable: bool


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
    """OEE figures of a machine or a line over a period; ``cost`` only for lines with costs."""

    inputs: oee.OeeInputs
    result: oee.OeeResult
    parts: float
    top_loss: tuple[str, float] | None
    cost: costs.CostOfLosses | None = None


class PlantView:
    """The hierarchy of the plant with the tag ids the historian gave, indexed by path."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.sites: list[SiteView] = [self._site(s) for s in runtime.plant.sites]
        self.lines = {ln.path: ln for s in self.sites for ln in s.lines}
        self.machines = {m.path: m for ln in self.lines.values() for m in ln.machines}
        self.tags = {t.path: t for m in self.machines.values() for t in m.tags}
        self.planned = {s.name: PlannedTime.of_site(s.model) for s in self.sites}

    def _site(self, s: Site) -> SiteView:
        lines = []
        for a in s.areas:
            for ln in a.lines:
                lp = f"{s.name}/{a.name}/{ln.name}"
                lines.append(LineView(lp, ln.name, a.name, s.name, ln.description,
                                      [self._machine(f"{lp}/{m.name}", s.name, lp, m) for m in ln.machines], ln))
        return SiteView(s.name, s.description, s.timezone, lines, s)

    def _machine(self, path: str, site: str, line: str, m: Machine) -> MachineView:
        ids = self.runtime.tag_ids
        tags = [TagView(f"{path}/{t.name}", t.name, t.unit, t.type, int(ids[f"{path}/{t.name}"]), t.writable)
                for t in m.tags if f"{path}/{t.name}" in ids]
        return MachineView(path, m.name, m.kind, m.description, site, line, tags, m.states is not None, m)

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
        """``[start, end)`` of a named period (see PERIODS) ending now, in the site's calendar."""
        end = now_us() if end_us is None else end_us
        s = self.site(site)
        if period == "today":
            local = datetime.fromtimestamp(end / 1e6, ZoneInfo(s.timezone))
            midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=ZoneInfo(s.timezone))
            return to_us(midnight), end
        if period == "shift":
            span = self.planned[site].shift_at(end)
            return (span.start_us if span is not None else end - 8 * 3600 * 1_000_000), end
        hours = {"8h": 8, "24h": 24, "7d": 24 * 7}.get(period)
        if hours is None:
            raise NotFound(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")
        return end - int(timedelta(hours=hours) / timedelta(microseconds=1)), end


# -- live -----------------------------------------------------------------------------------------
def machine_states(runtime: Runtime) -> dict[str, tuple[str, int]]:
    """Each machine's current state and since when (machines without state rules are absent)."""
    return {} if runtime.states is None else runtime.states.current()


# -- OEE (the API's service layer computes the inputs) -------------------------------------------------
def _kpi(runtime: Runtime, inputs: oee.OeeInputs, start: int, end: int, cost_of: Costs | None = None,
         **where: Any) -> Kpi:
    result = oee.compute(inputs)
    cost = costs.losses(result, inputs, cost_of) if cost_of is not None else None
    return Kpi(inputs, result, inputs.pq, top_loss(runtime, start, end, **where), cost)


def line_kpis(view: PlantView, ln: LineView, start: int, end: int, who: Principal = READER) -> dict[str, Kpi | None]:
    """OEE of each machine of the line with production counters and of the line (times and quantities summed),
    with the top loss of each and the cost of the line's losses; absent machines have no OEE."""
    rt = view.runtime
    found = queries.oee(rt, who, ln.path, start, end)
    out: dict[str, Kpi | None] = {m.path: None for m in ln.machines}
    for item in found.get("machines", []):
        out[item["machine"]] = _kpi(rt, oee.OeeInputs(**item["inputs"]), start, end, machine=item["machine"])
    if found.get("machines"):
        out[ln.path] = _kpi(rt, oee.OeeInputs(**found["inputs"]), start, end, ln.model.costs, line=ln.path)
    else:
        out[ln.path] = None
    return out


def top_loss(runtime: Runtime, start: int, end: int, **where: Any) -> tuple[str, float] | None:
    """The reason (or, unassigned, the state) that lost the most time in the period; micro-stops apart."""
    if runtime.store is None:
        return None
    page = runtime.store.downtime(start_us=start, end_us=end, limit=1000, micro=False, **where)
    spent: dict[str, float] = defaultdict(float)
    for ev in page.items:
        if ev.state == "unknown":
            continue
        lo, hi = max(ev.start_us, start), min(ev.end_us if ev.end_us is not None else end, end)
        spent[ev.reason or f"{ev.state} (no reason)"] += max(hi - lo, 0) / 1e6
    if not spent:
        return None
    key = max(spent, key=lambda k: spent[k])
    return key, spent[key]


# -- line analysis --------------------------------------------------------------------------------
def pareto(runtime: Runtime, who: Principal, line: str, by: str, start: int, end: int) -> dict[str, Any]:
    """Lost time by reason, machine or shift (rows with key, group, count, duration_s, cumulative)."""
    return queries.pareto(runtime, who, by, start, end, line=line)


def bottleneck_of(view: PlantView, who: Principal, line: str, start: int, end: int) -> dict[str, Any] | None:
    """The line's constraint by the active-period method, with its evidence; None without state rules."""
    if not any(m.has_states for m in view.line(line).machines):
        return None
    return queries.bottleneck(view.runtime, who, line, start, end)


# -- machine --------------------------------------------------------------------------------------
def history(runtime: Runtime, who: Principal, tag_id: int, start: int, end: int, n_out: int = 800
            ) -> tuple[list[int], list[float | None]]:
    """Downsampled (MinMaxLTTB) history of a numeric tag: timestamps in ms and values."""
    if end <= start:
        return [], []
    found = queries.downsample_history(runtime, who, tag_id, start, end, n_out)
    return list(found["ts_ms"]), list(found["value"])


def timeline(runtime: Runtime, machine: str, start: int, end: int) -> list[Interval]:
    """The machine's state intervals overlapping the range (the open one ends at ``end``)."""
    if runtime.store is None:
        return []
    return runtime.store.intervals(start, end, machines=[machine], open_until=end)


def events(runtime: Runtime, machine: str, limit: int = 30) -> list[DowntimeEvent]:
    """The machine's latest downtime events, newest first (micro-stops included, flagged)."""
    if runtime.store is None:
        return []
    return runtime.store.downtime(machine=machine, limit=limit).items


def reason_tree(runtime: Runtime, line: str) -> dict[str, list[str]]:
    return {} if runtime.downtime is None else runtime.downtime.reasons(line)


def assign_reason(runtime: Runtime, who: Principal, event_id: int, group: str, reason: str) -> dict[str, Any]:
    """Record an operator's reason for a stop (operator rights at the site; checked against the reason tree)."""
    return queries.assign_reason(runtime, who, event_id, reason, group=group)


# -- alarms (the engine and the AlarmService, as the REST routes use them) ----------------------------
def alarm_sites(runtime: Runtime, who: Principal, role: Role = "viewer") -> list[str]:
    """The sites of the plant where ``who`` has at least ``role``."""
    return who.sites([s.name for s in runtime.plant.sites], role)


def active_alarms(runtime: Runtime, who: Principal, *, sites: Sequence[str] | None = None,
                  priorities: Sequence[str] | None = None, states: Sequence[str] | None = None) -> list[AlarmView]:
    """Annunciated alarms (or those in ``states``) at the sites ``who`` may see, sorted by priority (critical
    first), then newest first."""
    engine = runtime.alarm_engine
    if engine is None:
        return []
    allowed = set(alarm_sites(runtime, who))
    if sites:
        allowed &= set(sites)
    found = _annunciated(engine) if not states else engine.alarms(list(states))
    rows = [a for a in found if a.site in allowed and (not priorities or a.priority in priorities)]
    rows.sort(key=lambda a: (PRIORITIES.index(a.priority), -a.since_us))
    return rows


_CACHE_US = 200_000
_cache: dict[int, tuple[int, list[AlarmView]]] = {}


def _annunciated(engine: AlarmEngine) -> list[AlarmView]:
    """The engine's annunciated alarms, shared by every open page for 0.2 s (banners, tiles, summaries)."""
    t = now_us()
    hit = _cache.get(id(engine))
    if hit is not None and t - hit[0] < _CACHE_US:
        return hit[1]
    found = engine.alarms()
    _cache.clear()
    _cache[id(engine)] = (t, found)
    return found


def drop_alarm_cache() -> None:
    """Forget the shared list (after an operator action, so that the page shows its effect at once)."""
    _cache.clear()


def alarm_counts(alarms: Sequence[AlarmView]) -> dict[str, int]:
    """Count per priority (every priority present, critical first)."""
    out = dict.fromkeys(PRIORITIES, 0)
    for a in alarms:
        out[a.priority] = out.get(a.priority, 0) + 1
    return out


def worst_by_machine(alarms: Sequence[AlarmView]) -> dict[str, str]:
    """Machine path -> the highest priority among its alarms."""
    out: dict[str, str] = {}
    for a in alarms:
        have = out.get(a.machine)
        if have is None or PRIORITIES.index(a.priority) < PRIORITIES.index(have):
            out[a.machine] = a.priority
    return out


def _alarm_service(runtime: Runtime) -> AlarmService:
    if runtime.alarms is None:
        raise AlarmActionError("the alarm system is not running", 503)
    return runtime.alarms


def acknowledge(runtime: Runtime, who: Principal, keys: Sequence[str], comment: str | None) -> list[str]:
    """Acknowledge alarms (all or none); operator rights at each alarm's site. Returns the new states."""
    try:
        return _alarm_service(runtime).acknowledge(list(keys), who, comment or None)
    finally:
        drop_alarm_cache()


def shelve(runtime: Runtime, who: Principal, key: str, minutes: float, reason: str) -> int:
    """Shelve an alarm for ``minutes`` with a reason (operator rights); returns the end time (us)."""
    until = now_us() + int(max(0.0, min(minutes, 1e7)) * 60 * 1_000_000)  # the service refuses out of range
    _alarm_service(runtime).shelve(key, until, reason.strip(), who)
    drop_alarm_cache()
    return until


def unshelve(runtime: Runtime, who: Principal, key: str) -> str:
    new = _alarm_service(runtime).unshelve(key, who, None)
    drop_alarm_cache()
    return new


def alarm_journal(runtime: Runtime, who: Principal, sites: Sequence[str] | None = None,
                  limit: int = 100) -> list[JournalEntry]:
    """The latest transitions (newest first) at the sites ``who`` may see."""
    if runtime.alarms is None:
        return []
    allowed = [s for s in alarm_sites(runtime, who) if not sites or s in sites]
    runtime.alarms.engine.flush()  # what happened a moment ago is in the journal too
    return runtime.alarms.store.journal(sites=allowed, limit=limit)[0]


# -- control (the ControlService, as the REST routes use it) ----------------------------------------
@dataclass(frozen=True)
class Setpoint:
    """A writable tag with a ``control:`` section, as the setpoint panel shows it."""

    path: str
    name: str
    unit: str
    type: str
    spec: WriteSpec
    site: str


def setpoints(view: PlantView, machine: MachineView) -> list[Setpoint]:
    out = []
    for t in machine.model.tags:
        if t.writable and t.control is not None:
            out.append(Setpoint(f"{machine.path}/{t.name}", t.name, t.unit, t.type, t.control, machine.site))
    return out


def _control(runtime: Runtime) -> ControlService:
    if runtime.control is None:
        raise ControlRefused(Reason.AUDIT_FAILED, "the control path is not running")
    return runtime.control


def interlocks_now(runtime: Runtime, sp: Setpoint) -> list[InterlockStatus]:
    """Each interlock of the tag judged on the live values now (what staging would find)."""
    svc = _control(runtime)
    machine = sp.path.rsplit("/", 1)[0]
    locks = [Interlock.compile(e, machine) for e in sp.spec.interlocks]
    paths = list(dict.fromkeys(p for lk in locks for p in lk.paths))
    readings = svc.live.read(paths) if paths else {}
    return [lk.evaluate(readings) for lk in locks]


def stage(runtime: Runtime, who: Principal, path: str, value: Any) -> Staged:
    """Select a write (raises ControlRefused when there is nothing to show, e.g. no rights: the control
    service checks the rights and records every refusal in the audit trail)."""
    return _control(runtime).stage(who, path, value)


async def confirm(runtime: Runtime, who: Principal, staged_id: str) -> Outcome:
    """Operate a staged write once (a new command id per confirm)."""
    return await _control(runtime).confirm(who, staged_id, uuid.uuid4().hex)


def approvals(runtime: Runtime, who: Principal, machine: str) -> list[Staged]:
    """Critical staged writes of the machine awaiting a second person that ``who`` may approve."""
    if runtime.control is None:
        return []
    latest: dict[tuple[str, str], Staged] = {}  # a newer stage by the same user of the same tag supersedes
    for s in runtime.control.pending(who):
        if s.critical and s.tag.rsplit("/", 1)[0] == machine:
            have = latest.get((s.user, s.tag))
            if have is None or s.created_at >= have.created_at:
                latest[(s.user, s.tag)] = s
    return [s for s in latest.values() if s.approved_by is None and s.user != who.name and who.can(s.site, s.role)]


def approve(runtime: Runtime, who: Principal, staged_id: str) -> Staged:
    return _control(runtime).approve(who, staged_id)


# -- audit (admins) -----------------------------------------------------------------------------------
def audit_records(runtime: Runtime, who: Principal, *, start_us: int | None = None, end_us: int | None = None,
                  actor: str | None = None, kind: str | None = None, site: str | None = None,
                  limit: int = 200) -> list[AuditRecord]:
    """The newest matching records; admin rights as the API asks (at ``site``, or at every site)."""
    if not can_read_audit(who, site):
        raise PermissionError("admin rights at the site (or at every site) are needed to read the audit trail")
    if runtime.audit is None:
        return []
    return list(runtime.audit.query(start_us=start_us, end_us=end_us, actor=actor or None, kind=kind or None,
                                    site=site or None, newest_first=True, limit=limit))


def can_read_audit(who: Principal, site: str | None) -> bool:
    return who.can(site, "admin") if site else who.roles.get(ALL_SITES) == "admin"


def audit_verify(runtime: Runtime, who: Principal) -> VerifyResult | None:
    """The hash chain check (admin at every site); None without an audit log."""
    if not can_read_audit(who, None):
        raise PermissionError("admin rights at every site are needed to check the chain")
    return None if runtime.audit is None else runtime.audit.verify()


def alarm_performance(runtime: Runtime, who: Principal, window_s: int) -> dict[str, Any] | None:
    """EEMUA 191 figures over the last ``window_s`` seconds for the sites ``who`` may view (None: no alarms)."""
    if runtime.alarms is None:
        return None
    end = now_us()
    perf = runtime.alarms.performance(end - window_s * 1_000_000, end, alarm_sites(runtime, who))
    return perf.to_dict()


def failed_deliveries(runtime: Runtime, who: Principal, limit: int = 50) -> list[dict[str, Any]]:
    """Notifications that failed after their retries, newest first, at the sites ``who`` may view."""
    if runtime.alarms is None:
        return []
    rows, _ = runtime.alarms.store.deliveries(["failed"], alarm_sites(runtime, who), limit=limit)
    return [r.to_dict() for r in rows]

