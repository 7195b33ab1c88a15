"""OEE, cost of losses, bottleneck and the overview, over a running ``Runtime`` (re-exported by ``queries``).

OEE of one machine over ``[start, min(end, now))`` (ISO 22400-2, see docs/oee.md):

* PBT = the site calendar's planned time in which the machine's state is known, MINUS the time it spent in
  ``planned_stop`` (a machine stopped on purpose is not an availability loss; time without data — plantlink
  not running, inputs of bad quality (``unknown``) — is neither production nor loss, so it is left out);
* APT = time in ``running`` within planned time (the state intervals of the store);
* PQ / GQ / SQ from the production counters in the historian (a sample before ``start``, within
  ``COUNTER_LOOKBACK_US``, is the base of the first increment). Only steps within a continuous stretch of
  samples count: the first reading after a restart of plantlink (the store's cuts), a device
  reconnect or bad quality (a bad sample), or a time gap (the machine's ``production.max_gap``, when set) is a
  baseline; what the counter advanced across the gap is reported as ``unattributed``, not in the KPIs. A ratio
  above 1 sets ``data_problem``.

Lines, areas and sites combine their machines' inputs (sums, never means of ratios). "today" is since the
local midnight of the site, "shift" since the start of the current shift. Figures for "today" and "shift"
are cached per machine for ``LIVE_TTL_S`` seconds so that the overview renders fast.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from datetime import datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from plantlink.api.scope import Caller, MachineRef, PlantIndex, check_range, index
from plantlink.api.timefmt import stamp
from plantlink.engines import bottleneck as bn
from plantlink.engines.calendar import merge_intervals, overlap_us, to_us
from plantlink.engines.costs import losses
from plantlink.engines.oee import Gaps, OeeInputs, OeeResult, combine, compute, inputs_from_states
from plantlink.errors import NotFound, PlantlinkError, QueryError, Unavailable
from plantlink.model.production import Costs
from plantlink.samples import Quality, now_us

if TYPE_CHECKING:
    from plantlink.runtime import Runtime

LIVE_TTL_S = 5.0
COUNTER_LOOKBACK_US = 3600 * 1_000_000
MAX_COUNTER_SAMPLES = 5_000_000
MAX_RANGE_US = 400 * 86400 * 1_000_000
PERIODS = ("today", "shift")
_ZERO = OeeInputs(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class _Cache:
    """Small TTL cache of (machine, period) -> (start_us, inputs); thread-safe."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], tuple[float, int, OeeInputs]] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[int, OeeInputs] | None:
        with self.lock:
            hit = self.items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, key: tuple[str, str], start_us: int, inputs: OeeInputs) -> None:
        with self.lock:
            self.items[key] = (time.monotonic() + LIVE_TTL_S, start_us, inputs)


_CACHES: weakref.WeakKeyDictionary[Runtime, _Cache] = weakref.WeakKeyDictionary()


def _cache(rt: Runtime) -> _Cache:
    c = _CACHES.get(rt)
    if c is None:
        c = _CACHES[rt] = _Cache()
    return c


# -- periods ---------------------------------------------------------------------------------------------
def period_bounds(rt: Runtime, site: str, period: str, now: int | None = None) -> tuple[int, int]:
    """``[start, now)`` of a live period at ``site``: "today" (since local midnight) or "shift" (since the
    current shift began; since midnight when no shift is on)."""
    if period not in PERIODS:
        raise QueryError(f"period must be one of {list(PERIODS)}, got {period!r}", field="period")
    idx = index(rt)
    t = now_us() if now is None else now
    planned = idx.planned[site]
    if period == "shift":
        span = planned.shift_at(t)
        if span is not None:
            return int(span.start_us), t
    zone = ZoneInfo(idx.sites[site].timezone)
    day = datetime.fromtimestamp(t / 1e6, tz=zone).date()
    return to_us(datetime.combine(day, dtime(0, 0), tzinfo=zone)), t


# -- one machine -----------------------------------------------------------------------------------------
def _counter(rt: Runtime, idx: PlantIndex, m: MachineRef, name: str | None, start: int, end: int
             ) -> tuple[np.ndarray, np.ndarray] | None:
    if name is None:
        return None
    tid = idx.ids.get(f"{m.path}/{name}")
    if tid is None or rt.historian is None:
        raise PlantlinkError(f"machine {m.path}: production counter tag {name!r} is not in the historian")
    t = rt.historian.raw(tid, start - COUNTER_LOOKBACK_US, end, MAX_COUNTER_SAMPLES + 1)
    if t.num_rows > MAX_COUNTER_SAMPLES:
        raise QueryError(f"more than {MAX_COUNTER_SAMPLES} counter samples in the range: shorten it", field="end")
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    v = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    q = t.column("quality").to_numpy(zero_copy_only=False)
    return ts, np.where(q >= Quality.UNCERTAIN, v, np.nan)


def _gaps(rt: Runtime, m: MachineRef, start: int, end: int) -> Gaps:
    """The restarts of plantlink (the store's cuts) and the machine's ``max_gap``."""
    assert rt.store is not None and m.model.production is not None
    max_gap = m.model.production.max_gap
    return Gaps(cuts=rt.store.cuts(start - COUNTER_LOOKBACK_US, end),
                max_gap_us=None if max_gap is None else round(max_gap * 1e6))


def machine_inputs(rt: Runtime, m: MachineRef, start: int, end: int, now: int | None = None) -> OeeInputs | None:
    """OEE inputs of one machine over ``[start, min(end, now))``; None when it has no production counters."""
    prod = m.model.production
    if prod is None:
        return None
    t = now_us() if now is None else now
    end = min(end, t)
    if end <= start or rt.store is None:
        return dataclasses.replace(_ZERO, pri_s=prod.ideal_cycle_time)
    idx = index(rt)
    planned = idx.planned[m.site]
    ivs = rt.store.intervals(start, end, machines=[m.path], open_until=t)
    intervals = [(iv.start_us, iv.end_us if iv.end_us is not None else end, iv.state) for iv in ivs]
    produced = _counter(rt, idx, m, prod.produced, start, end)
    assert produced is not None
    inputs = inputs_from_states(
        intervals, planned, start, end, pri_s=prod.ideal_cycle_time, produced=produced,
        good=_counter(rt, idx, m, prod.good, start, end), reject=_counter(rt, idx, m, prod.reject, start, end),
        counter_max=prod.counter_max, gaps=_gaps(rt, m, start, end))
    plan_s, plan_e = planned.planned_arrays(start, end)
    stopped = _overlap_s(intervals, {"planned_stop"}, plan_s, plan_e)
    known = _overlap_s(intervals, None, plan_s, plan_e)  # planned time with a known state
    return dataclasses.replace(inputs, pbt_s=max(known - stopped, 0.0))


def _overlap_s(intervals: list[tuple[int, int, str]], states: set[str] | None, plan_s: Any, plan_e: Any) -> float:
    """Seconds of planned time covered by intervals in ``states`` (None: any state but ``unknown``)."""
    keep = [(s, e) for s, e, st in intervals if (st in states if states is not None else st != "unknown")]
    iv_s, iv_e = merge_intervals([s for s, _ in keep], [e for _, e in keep])
    return float(overlap_us(iv_s, iv_e, plan_s, plan_e).sum()) / 1e6


def _live_inputs(rt: Runtime, m: MachineRef, period: str, now: int | None) -> tuple[int, OeeInputs] | None:
    if m.model.production is None:
        return None
    cache = _cache(rt)
    if now is None and (hit := cache.get((m.path, period))) is not None:
        return hit
    start, end = period_bounds(rt, m.site, period, now)
    inputs = machine_inputs(rt, m, start, end, end)
    assert inputs is not None
    if now is None:
        cache.put((m.path, period), start, inputs)
    return start, inputs


# -- results ---------------------------------------------------------------------------------------------
def _result_dict(inputs: OeeInputs, result: OeeResult) -> dict[str, Any]:
    return {"oee": result.oee, "availability": result.availability, "effectiveness": result.effectiveness,
            "quality_rate": result.quality_rate, "losses_s": {
                "availability": result.availability_loss_s, "performance": result.performance_loss_s,
                "quality": result.quality_loss_s},
            "fully_productive_s": result.fully_productive_s, "warnings": result.warnings, "notes": result.notes,
            "data_problem": result.data_problem, "unattributed": unattributed(inputs),
            "inputs": dataclasses.asdict(inputs)}


def unattributed(inputs: OeeInputs) -> dict[str, float]:
    """What the counters advanced across gaps in the data (not in the KPIs), and decreases across gaps."""
    return {"produced": inputs.gap_pq, "good": inputs.gap_gq, "scrap": inputs.gap_sq,
            "counter_resets": inputs.gap_resets}


def top_loss(result: OeeResult) -> dict[str, Any] | None:
    """The largest of the three OEE losses (seconds), or None when nothing was lost."""
    found = {"availability": result.availability_loss_s, "performance": result.performance_loss_s,
             "quality": result.quality_loss_s}
    kind = max(found, key=lambda k: found[k])
    return {"kind": kind, "seconds": found[kind]} if found[kind] > 0 else None


def _machines_under(idx: PlantIndex, who: Caller, path: str) -> tuple[str, list[MachineRef]]:
    p = path.strip("/")
    depth = p.count("/") + 1 if p else 0
    if depth == 4:
        return "machine", [idx.machine(who, p)]
    if depth == 3:
        return "line", [idx.machines[x] for x in idx.line(who, p).machines]
    site = p.split("/", 1)[0]
    idx.site(who, site)
    ms = [m for mp, m in idx.machines.items() if mp.startswith(p + "/")]
    if depth not in (1, 2) or (not ms and depth == 2):
        raise NotFound(f"unknown scope {path!r}: give a site, area, line or machine path", field="scope")
    return ("site" if depth == 1 else "area"), ms


def _assemble(scope: str, kind: str, start: int, end: int, per: list[tuple[MachineRef, OeeInputs]]
              ) -> dict[str, Any]:
    total = combine(i for _, i in per)
    out = {"scope": scope, "kind": kind, **stamp(start, "start"), **stamp(end, "end"),
           **_result_dict(total, compute(total))}
    if kind != "machine":
        out["machines"] = [{"machine": m.path, **_result_dict(i, compute(i))} for m, i in per]
    return out


def oee(rt: Runtime, who: Caller, scope: str, start_us: int, end_us: int, *, now: int | None = None
        ) -> dict[str, Any]:
    """OEE of a machine, line, area or site over ``[start, end)`` (capped at now)."""
    check_range(start_us, end_us, MAX_RANGE_US)
    idx = index(rt)
    kind, ms = _machines_under(idx, who, scope)
    per = [(m, i) for m in ms if (i := machine_inputs(rt, m, start_us, end_us, now)) is not None]
    if kind == "machine" and not per:
        raise NotFound(f"machine {scope!r} has no production counters: no OEE", field="scope")
    return _assemble(scope.strip("/"), kind, start_us, min(end_us, now or now_us()), per)


def oee_period(rt: Runtime, who: Caller, scope: str, period: str = "today", *, now: int | None = None
               ) -> dict[str, Any]:
    """Live OEE: "today" (since local midnight of the site) or "shift" (the current shift). Cached briefly."""
    if period not in PERIODS:
        raise QueryError(f"period must be one of {list(PERIODS)}, got {period!r}", field="period")
    idx = index(rt)
    kind, ms = _machines_under(idx, who, scope)
    per, starts = [], []
    for m in ms:
        hit = _live_inputs(rt, m, period, now)
        if hit is not None:
            starts.append(hit[0])
            per.append((m, hit[1]))
    if kind == "machine" and not per:
        raise NotFound(f"machine {scope!r} has no production counters: no OEE", field="scope")
    t = now_us() if now is None else now
    start = min(starts) if starts else period_bounds(rt, scope.split("/", 1)[0], period, t)[0]
    out = _assemble(scope.strip("/"), kind, start, t, per)
    out["period"] = period
    return out


def oee_by_shift(rt: Runtime, who: Caller, scope: str, start_us: int, end_us: int, *, now: int | None = None
                 ) -> list[dict[str, Any]]:
    """OEE of each shift occurrence of the site's calendar overlapping the range."""
    check_range(start_us, end_us, 93 * 86400 * 1_000_000)
    idx = index(rt)
    kind, ms = _machines_under(idx, who, scope)
    spans = idx.planned[scope.strip("/").split("/", 1)[0]].shifts(start_us, end_us)
    out = []
    for span in spans:
        per = [(m, i) for m in ms if (i := machine_inputs(rt, m, span.start_us, span.end_us, now)) is not None]
        item = _assemble(scope.strip("/"), kind, span.start_us, span.end_us, per)
        item.update(shift=span.name, day=span.day.isoformat())
        out.append(item)
    return out


# -- costs, bottleneck -----------------------------------------------------------------------------------
def line_costs(rt: Runtime, who: Caller, line: str, start_us: int, end_us: int, *, now: int | None = None
               ) -> dict[str, Any]:
    """Money lost to availability, performance and quality losses on a line (and per machine)."""
    check_range(start_us, end_us, MAX_RANGE_US)
    ref = index(rt).line(who, line)
    costs = ref.model.costs or Costs()
    found = [(mp, machine_inputs(rt, index(rt).machines[mp], start_us, end_us, now)) for mp in ref.machines]
    kept = [(mp, i) for mp, i in found if i is not None]
    per = [{"machine": mp, **losses(compute(i), i, costs)} for mp, i in kept]
    total_in = combine(i for _, i in kept)
    return {"line": ref.path, "configured": ref.model.costs is not None, **stamp(start_us, "start"),
            **stamp(min(end_us, now or now_us()), "end"), **losses(compute(total_in), total_in, costs),
            "machines": per}


def bottleneck(rt: Runtime, who: Caller, line: str, start_us: int, end_us: int) -> dict[str, Any]:
    """The line's constraint over the range (active-period method), with per-machine evidence."""
    check_range(start_us, end_us, MAX_RANGE_US)
    ref = index(rt).line(who, line)
    if rt.store is None:
        raise Unavailable("the relational store is not open")
    try:
        out = bn.analyse(rt.store, rt.plant, ref.path, start_us, end_us, now_us())
    except ValueError as exc:
        raise QueryError(str(exc), field="line") from None
    out.update(stamp(start_us, "start"))
    out.update(stamp(end_us, "end"))
    return out


# -- overview --------------------------------------------------------------------------------------------
def _summary(inputs: OeeInputs | None) -> dict[str, Any]:
    if inputs is None:
        return {"oee": None, "availability": None, "effectiveness": None, "quality_rate": None,
                "parts_today": None, "top_loss": None, "data_problem": False, "unattributed_today": None}
    r = compute(inputs)
    return {"oee": r.oee, "availability": r.availability, "effectiveness": r.effectiveness,
            "quality_rate": r.quality_rate, "parts_today": inputs.pq, "good_today": inputs.gq,
            "top_loss": top_loss(r), "data_problem": r.data_problem, "unattributed_today": inputs.gap_pq}


def overview(rt: Runtime, who: Caller, *, now: int | None = None) -> dict[str, Any]:
    """Per visible site, line and machine: state, OEE today, parts made today, top loss (cached figures)."""
    idx = index(rt)
    current = rt.states.current() if rt.states is not None else {}
    sites = []
    for site in idx.visible_sites(who):
        site_inputs: list[OeeInputs] = []
        lines = []
        for lp, ref in idx.lines.items():
            if ref.site != site:
                continue
            machines, line_inputs = [], []
            for mp in ref.machines:
                hit = _live_inputs(rt, idx.machines[mp], "today", now)
                state = current.get(mp)
                if hit is not None:
                    line_inputs.append(hit[1])
                machines.append({"machine": mp, "state": state[0] if state else None,
                                 **stamp(state[1] if state else None, "since"),
                                 **_summary(hit[1] if hit else None)})
            site_inputs += line_inputs
            lines.append({"line": lp, **_summary(combine(line_inputs) if line_inputs else None),
                          "machines": machines})
        sites.append({"site": site, **_summary(combine(site_inputs) if site_inputs else None), "lines": lines})
    return {**stamp(now_us() if now is None else now, "generated"), "sites": sites}
