"""The HMI's read model over a running ``Runtime``: the one place the pages get data from.

Every function here is plain, synchronous Python (pages call the slow ones through ``asyncio.to_thread``).
When ``plantlink.api.queries`` offers the same figure, the function here delegates to it: switching the HMI
to the API's service layer happens in this module only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from plantlink.engines import bottleneck, costs, oee
from plantlink.engines.calendar import PlannedTime, to_us
from plantlink.errors import PlantlinkError
from plantlink.samples import now_us

if TYPE_CHECKING:
    from plantlink.api.security import Principal
    from plantlink.model.schema import Line, Machine, Site
    from plantlink.runtime import Runtime
    from plantlink.store import DowntimeEvent, Interval, Pareto

MINUTE_US = 60_000_000
PERIODS: dict[str, str] = {"today": "Today", "shift": "Current shift", "8h": "Last 8 h", "24h": "Last 24 h",
                           "7d": "Last 7 days"}


class NotFound(PlantlinkError):
    """A site, line, machine or tag path that the plant model does not have."""


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


# -- OEE ------------------------------------------------------------------------------------------
def _counter_samples(runtime: Runtime, tag_ids: list[int], start: int, end: int) -> dict[int, oee.Samples]:
    """Counter readings as (ts, value) from the 1-minute first/last aggregates (few rows for a long period)."""
    hist = runtime.historian
    if hist is None or end <= start or not tag_ids:
        return {}
    table = hist.aggregate(tag_ids, start, end, MINUTE_US, ["first", "last"])
    tid = table.column("tag_id").to_numpy(zero_copy_only=False).astype(np.int64)
    bucket = table.column("bucket").cast("int64").to_numpy(zero_copy_only=False)
    first = table.column("first").to_numpy(zero_copy_only=False).astype(np.float64)
    last = table.column("last").to_numpy(zero_copy_only=False).astype(np.float64)
    out: dict[int, oee.Samples] = {}
    for t in tag_ids:
        sel = tid == t
        ts = np.stack([bucket[sel], bucket[sel] + MINUTE_US // 2], axis=1).ravel()
        vals = np.stack([first[sel], last[sel]], axis=1).ravel()
        out[t] = (ts, vals)
    return out


def _intervals(runtime: Runtime, machines: list[str], start: int, end: int) -> list[Interval]:
    if runtime.store is None:
        return []
    return runtime.store.intervals(start, end, machines=machines, open_until=end)


def machine_kpi(view: PlantView, m: MachineView, start: int, end: int) -> Kpi | None:
    """OEE, parts and top loss of one machine; None when it has no production counters or state rules."""
    prod = m.model.production
    if prod is None or not m.has_states:
        return None
    rt = view.runtime
    names = {"produced": prod.produced, "good": prod.good, "reject": prod.reject}
    ids = {role: rt.tag_ids.get(f"{m.path}/{name}") for role, name in names.items() if name}
    samples = _counter_samples(rt, [i for i in ids.values() if i is not None], start, end)
    if ids.get("produced") is None or ids["produced"] not in samples:
        return None
    ivs = [(iv.start_us, iv.end_us or end, iv.state) for iv in _intervals(rt, [m.path], start, end)]
    good = samples.get(ids["good"]) if ids.get("good") is not None else None  # type: ignore[arg-type]
    reject = samples.get(ids["reject"]) if ids.get("reject") is not None else None  # type: ignore[arg-type]
    inputs = oee.inputs_from_states(ivs, view.planned[m.site], start, end, pri_s=prod.ideal_cycle_time,
                                    produced=samples[ids["produced"]], good=good, reject=reject,
                                    counter_max=prod.counter_max)
    return Kpi(inputs, oee.compute(inputs), inputs.pq, top_loss(rt, start, end, machine=m.path))


def line_kpi(view: PlantView, ln: LineView, start: int, end: int,
             machine_kpis: dict[str, Kpi | None] | None = None) -> Kpi | None:
    """The line's OEE (times and quantities of its machines summed), losses and their cost.
    ``machine_kpis``: the machines' figures for the same period when already computed."""
    known = machine_kpis or {}
    found = [known[m.path] if m.path in known else machine_kpi(view, m, start, end) for m in ln.machines]
    parts = [k for k in found if k is not None]
    if not parts:
        return None
    inputs = oee.combine(k.inputs for k in parts)
    result = oee.compute(inputs)
    cost = costs.losses(result, inputs, ln.model.costs) if ln.model.costs is not None else None
    return Kpi(inputs, result, inputs.pq, top_loss(view.runtime, start, end, line=ln.path), cost)


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
def pareto(runtime: Runtime, line: str, by: str, start: int, end: int) -> Pareto | None:
    return None if runtime.downtime is None else runtime.downtime.pareto(by, start, end, line=line)


def bottleneck_of(view: PlantView, line: str, start: int, end: int) -> dict[str, Any] | None:
    """The line's constraint by the active-period method, with its evidence; None without state rules."""
    rt = view.runtime
    if rt.store is None or not any(m.has_states for m in view.line(line).machines):
        return None
    return bottleneck.analyse(rt.store, rt.plant, line, start, end, now_us=end)


# -- machine --------------------------------------------------------------------------------------
def history(runtime: Runtime, tag_id: int, start: int, end: int, n_out: int = 800) -> tuple[list[int], list[float]]:
    """Downsampled (MinMaxLTTB) history of a numeric tag: timestamps in ms and values."""
    if runtime.historian is None or end <= start:
        return [], []
    table = runtime.historian.downsample(tag_id, start, end, n_out)
    ts = (table.column("ts").cast("int64").to_numpy(zero_copy_only=False) // 1000).tolist()
    return ts, table.column("value").to_pylist()


def timeline(runtime: Runtime, machine: str, start: int, end: int) -> list[Interval]:
    return _intervals(runtime, [machine], start, end)


def events(runtime: Runtime, machine: str, limit: int = 30) -> list[DowntimeEvent]:
    """The machine's latest downtime events, newest first (micro-stops included, flagged)."""
    if runtime.store is None:
        return []
    return runtime.store.downtime(machine=machine, limit=limit).items


def reason_tree(runtime: Runtime, line: str) -> dict[str, list[str]]:
    return {} if runtime.downtime is None else runtime.downtime.reasons(line)


def assign_reason(runtime: Runtime, event_id: int, group: str, reason: str, by: str) -> DowntimeEvent:
    """Record an operator's reason for a stop (checked against the line's reason tree)."""
    if runtime.downtime is None:
        raise PlantlinkError("the downtime engine is not running")
    return runtime.downtime.assign_reason(event_id, reason, by=by, group=group)
