"""OEE, cost of losses, bottleneck and the overview as the API answers them: JSON encoding of the results of
:mod:`plantlink.services.kpi` (re-exported by ``queries``). How the figures are computed: that module and
docs/oee.md."""

from __future__ import annotations

import dataclasses
from typing import Any

from plantlink.api.scope import services_of
from plantlink.api.timefmt import stamp
from plantlink.identity import Caller
from plantlink.services.kpi import Figures, MachineSummary, OeeReport, TopLoss, TopReason
from plantlink.services.periods import LIVE_PERIODS as PERIODS

__all__ = ["PERIODS", "bottleneck", "figures", "line_costs", "oee", "oee_by_shift", "oee_period", "overview",
           "period_bounds", "top_loss", "top_reason"]

MAX_RANGE_US = 400 * 86400 * 1_000_000


def period_bounds(rt: Any, site: str, period: str, now: int | None = None) -> tuple[int, int]:
    """``[start, now)`` of a live period at ``site`` (``services.periods``)."""
    return services_of(rt).periods.bounds(site, period, now, allowed=PERIODS)


# -- encoding --------------------------------------------------------------------------------------------
def top_loss(found: TopLoss | None) -> dict[str, Any] | None:
    return None if found is None else {"kind": found.kind, "seconds": found.seconds}


def top_reason(found: TopReason | None) -> dict[str, Any] | None:
    return None if found is None else {"reason": found.reason, "seconds": found.seconds}


def figures(f: Figures) -> dict[str, Any]:
    r, inputs = f.result, f.inputs
    return {"oee": r.oee, "availability": r.availability, "effectiveness": r.effectiveness,
            "quality_rate": r.quality_rate, "top_loss": top_loss(f.top_loss), "losses_s": {
                "availability": r.availability_loss_s, "performance": r.performance_loss_s,
                "quality": r.quality_loss_s},
            "fully_productive_s": r.fully_productive_s, "warnings": r.warnings, "notes": r.notes,
            "data_problem": r.data_problem, "unattributed": {
                "produced": inputs.gap_pq, "good": inputs.gap_gq, "scrap": inputs.gap_sq,
                "counter_resets": inputs.gap_resets},
            "inputs": dataclasses.asdict(inputs)}


def report(rep: OeeReport) -> dict[str, Any]:
    out = {"scope": rep.scope, "kind": rep.kind, **stamp(rep.start_us, "start"), **stamp(rep.end_us, "end"),
           **figures(rep.total), "top_reason": top_reason(rep.reasons.get(rep.scope))}
    if rep.kind != "machine":
        out["machines"] = [{"machine": mp, **figures(f), "top_reason": top_reason(rep.reasons.get(mp))}
                           for mp, f in rep.machines]
    if rep.period is not None:
        out["period"] = rep.period
    if rep.shift is not None:
        out.update(shift=rep.shift, day=rep.day)
    return out


# -- routes' calls ---------------------------------------------------------------------------------------
def oee(rt: Any, who: Caller, scope: str, start_us: int, end_us: int, *, now: int | None = None) -> dict[str, Any]:
    """OEE of a machine, line, area or site over ``[start, end)`` (capped at now)."""
    return report(services_of(rt).kpi.oee(who, scope, start_us, end_us, now=now))


def oee_period(rt: Any, who: Caller, scope: str, period: str = "today", *, now: int | None = None
               ) -> dict[str, Any]:
    """Live OEE: "today" or "shift" (``services.periods``). Cached briefly."""
    return report(services_of(rt).kpi.oee_period(who, scope, period, now=now))


def oee_by_shift(rt: Any, who: Caller, scope: str, start_us: int, end_us: int, *, now: int | None = None
                 ) -> list[dict[str, Any]]:
    """OEE of each shift occurrence of the site's calendar overlapping the range."""
    return [report(r) for r in services_of(rt).kpi.oee_by_shift(who, scope, start_us, end_us, now=now)]


def line_costs(rt: Any, who: Caller, line: str, start_us: int, end_us: int, *, now: int | None = None
               ) -> dict[str, Any]:
    """Money lost to availability, performance and quality losses on a line (and per machine)."""
    rep = services_of(rt).kpi.line_costs(who, line, start_us, end_us, now=now)
    return {"line": rep.line, "configured": rep.configured, **stamp(rep.start_us, "start"),
            **stamp(rep.end_us, "end"), **rep.total,
            "machines": [{"machine": mp, **c} for mp, c in rep.machines]}


def bottleneck(rt: Any, who: Caller, line: str, start_us: int, end_us: int) -> dict[str, Any]:
    """The line's constraint over the range (active-period method), with per-machine evidence."""
    out = dataclasses.asdict(services_of(rt).kpi.bottleneck(who, line, start_us, end_us))
    out.update(stamp(start_us, "start"))
    out.update(stamp(end_us, "end"))
    return out


def _summary(f: Figures | None, reason: TopReason | None) -> dict[str, Any]:
    if f is None:
        return {"oee": None, "availability": None, "effectiveness": None, "quality_rate": None,
                "parts_today": None, "top_loss": None, "top_reason": top_reason(reason), "data_problem": False,
                "unattributed_today": None}
    r = f.result
    return {"oee": r.oee, "availability": r.availability, "effectiveness": r.effectiveness,
            "quality_rate": r.quality_rate, "parts_today": f.inputs.pq, "good_today": f.inputs.gq,
            "top_loss": top_loss(f.top_loss), "top_reason": top_reason(reason), "data_problem": r.data_problem,
            "unattributed_today": f.inputs.gap_pq}


def _machine(m: MachineSummary) -> dict[str, Any]:
    return {"machine": m.machine, "state": m.state, **stamp(m.since_us, "since"), **_summary(m.today, m.top_reason)}


def overview(rt: Any, who: Caller, *, now: int | None = None) -> dict[str, Any]:
    """Per visible site, line and machine: state, OEE today, parts made today, top loss and top reason
    (cached figures)."""
    ov = services_of(rt).kpi.overview(who, now=now)
    return {**stamp(ov.generated_us, "generated"), "sites": [
        {"site": s.site, **_summary(s.today, s.top_reason), "lines": [
            {"line": ln.line, **_summary(ln.today, ln.top_reason), "machines": [_machine(m) for m in ln.machines]}
            for ln in s.lines]}
        for s in ov.sites]}
