"""A report as text for people: the figures of a :class:`~plantlink.services.reports.Report` formatted once, for
the HTML and the PDF alike (so that both say the same). Nothing is computed here but formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from plantlink.services.reports import Report

DASH = "\u2013"  # an en dash: no figure


@dataclass(frozen=True)
class Table:
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Said instead of the table when it has no rows.
    empty: str = "None."
    note: str = ""


@dataclass(frozen=True)
class View:
    title: str
    subtitle: str
    generated: str
    #: The headline figures: (label, value).
    headline: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    notes: tuple[str, ...]
    #: Chart data: OEE factors (label, fraction or None), losses (label, money), Pareto (reason, hours),
    #: energy (machine, kWh per good part).
    factors: tuple[tuple[str, float | None], ...] = ()
    losses: tuple[tuple[str, float], ...] = ()
    currency: str = ""
    pareto: tuple[tuple[str, float], ...] = ()
    energy: tuple[tuple[str, float], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def pct(x: float | None) -> str:
    return DASH if x is None else f"{x * 100:.1f} %"


def money(x: float | None, currency: str) -> str:
    return DASH if x is None else f"{x:,.2f} {currency}".strip()


def num(x: float | None, digits: int = 2) -> str:
    return DASH if x is None else f"{x:,.{digits}f}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.2f} h"


def local(us: int, zone: str) -> str:
    return datetime.fromtimestamp(us / 1e6, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def view(r: Report) -> View:
    o = r.oee.total
    res = o.result
    currency = r.costs.total["currency"] if r.costs.total is not None else ""
    headline = [("OEE", pct(res.oee)), ("Availability", pct(res.availability)),
                ("Performance", pct(res.effectiveness)), ("Quality", pct(res.quality_rate)),
                ("Good parts", num(o.inputs.gq, 0)), ("Scrap", num(o.inputs.sq, 0))]
    if r.costs.total is not None:
        headline.append(("Cost of losses", money(r.costs.total["total"], currency)))
    top = r.oee.total.top_loss
    if top is not None:
        headline.append(("Top loss", f"{top.kind} ({hours(top.seconds)})"))
    reason = r.oee.reasons.get(r.scope)
    if reason is not None:
        headline.append(("Top reason", f"{reason.reason} ({hours(reason.seconds)})"))
    if r.energy is not None and r.energy.result is not None:
        headline.append(("kWh per good part", num(r.energy.result.kwh_per_good_part, 3)))
    tables = [_oee_table(r), _costs_table(r), _pareto_table(r), _alarm_table(r), _capability_table(r),
              _energy_table(r), _risk_table(r)]
    losses: list[tuple[str, float]] = []
    if r.costs.total is not None:
        c = r.costs.total
        losses = [("Availability", c["availability_loss"]), ("Performance", c["performance_loss"]),
                  ("Quality", c["quality_loss"])]
    energy: list[tuple[str, float]] = []
    if r.energy is not None:
        each = [(m.machine.rsplit("/", 1)[-1], m.result.kwh_per_good_part) for m in r.energy.machines] or \
            [(r.scope.rsplit("/", 1)[-1], r.energy.result.kwh_per_good_part if r.energy.result else None)]
        energy = [(k, v) for k, v in each if v is not None]
    return View(
        title=f"{r.kind.capitalize()} report: {r.scope}",
        subtitle=f"{r.label} · {local(r.start_us, r.timezone)} to {local(r.end_us, r.timezone)} ({r.timezone})",
        generated=local(r.generated_us, r.timezone), headline=tuple(headline), tables=tuple(tables),
        notes=tuple([*r.notes, *res.warnings, *res.notes,
                     *(f"Energy: {n}" for n in (r.energy.result.notes if r.energy and r.energy.result else []))]),
        factors=(("Availability", res.availability), ("Performance", res.effectiveness),
                 ("Quality", res.quality_rate), ("OEE", res.oee)),
        losses=tuple(losses), currency=currency,
        pareto=tuple((row.key or "(no reason)", row.duration_s / 3600) for row in r.pareto.rows[:10]),
        energy=tuple(energy))


def _oee_table(r: Report) -> Table:
    rows = [(m, pct(f.result.oee), pct(f.result.availability), pct(f.result.effectiveness),
             pct(f.result.quality_rate), num(f.inputs.gq, 0), num(f.inputs.sq, 0)) for m, f in r.oee.machines]
    t = r.oee.total
    rows.append(("Total" if r.oee.machines else r.scope, pct(t.result.oee), pct(t.result.availability),
                 pct(t.result.effectiveness), pct(t.result.quality_rate), num(t.inputs.gq, 0), num(t.inputs.sq, 0)))
    return Table("OEE", ("Machine", "OEE", "Availability", "Performance", "Quality", "Good", "Scrap"), tuple(rows))


def _costs_table(r: Report) -> Table:
    rows = []
    for line in r.costs.lines:
        for m, c in line.machines:
            rows.append((m, money(c["availability_loss"], c["currency"]), money(c["performance_loss"], c["currency"]),
                         money(c["quality_loss"], c["currency"]), money(c["total"], c["currency"])))
    if r.costs.total is not None and len(rows) != 1:
        c = r.costs.total
        rows.append(("Total", money(c["availability_loss"], c["currency"]), money(c["performance_loss"], c["currency"]),
                     money(c["quality_loss"], c["currency"]), money(c["total"], c["currency"])))
    return Table("Losses in money", ("Machine", "Availability", "Performance", "Quality", "Total"), tuple(rows),
                 "No line of this scope has costs configured (costs: in the plant model).")


def _pareto_table(r: Report) -> Table:
    rows = tuple((row.key or "(no reason)", row.group or "", str(row.count), hours(row.duration_s), pct(row.share),
                  pct(row.cumulative)) for row in r.pareto.rows)
    return Table(f"Downtime Pareto ({r.pareto_of})", ("Reason", "Group", "Stops", "Lost", "Share", "Cumulative"),
                 rows, "No stops in the period.",
                 f"Micro-stops: {r.pareto.micro.count} ({hours(r.pareto.micro.duration_s)}); unknown state: "
                 f"{hours(r.pareto.unknown.duration_s)}.")


def _alarm_table(r: Report) -> Table:
    a = r.alarms
    if a is None:
        return Table(f"Alarm system (EEMUA 191), site {r.site}", ("Figure", "Value"), (),
                     "Not available: the alarm system is not running where this report was made.")
    hours_ = max((a.end_us - a.start_us) / 3.6e9, 1e-9)
    rows = [("Annunciations", str(a.annunciations)), ("Per hour", num(a.annunciations / hours_, 1)),
            ("Average per 10 min", num(a.avg_per_10min, 2)), ("Peak per 10 min", str(a.peak_per_10min)),
            ("Flood share (>10 per 10 min)", pct(a.flood_share)), ("Standing (stale) alarms", str(len(a.stale))),
            ("Chattering alarms", str(len(a.chattering)))]
    rows += [(f"Top: {t.get('alarm')}", f"{t.get('count')} ({pct(t.get('share'))})") for t in a.top[:5]]
    return Table(f"Alarm system (EEMUA 191), site {r.site}", ("Figure", "Value"), tuple(rows))


def _capability_table(r: Report) -> Table:
    rows = []
    for row in r.capability:
        c = row.capability
        if c is None:
            rows.append((row.tag, DASH, DASH, DASH, DASH, row.problem or ""))
        else:
            rows.append((row.tag, num(c.cp), num(c.cpk), num(c.pp), num(c.ppk), f"n = {c.n}"))
    return Table("SPC capability", ("Tag", "Cp", "Cpk", "Pp", "Ppk", ""), tuple(rows),
                 "No tag of this scope has specification limits (spc: lsl / usl).")


def _energy_table(r: Report) -> Table:
    e = r.energy
    if e is None or e.result is None:
        return Table("Energy", ("Machine", "kWh", "Idle kWh", "kWh per good part", "Cost"), (),
                     "No machine of this scope has an energy tag.")
    cur = e.currency or ""
    rows = [(m.machine, num(m.result.total_kwh), num(m.result.idle_kwh), num(m.result.kwh_per_good_part, 3),
             money(m.result.cost, cur) if m.result.cost is not None else DASH) for m in e.machines]
    rows.append(("Total" if e.machines else e.scope, num(e.result.total_kwh), num(e.result.idle_kwh),
                 num(e.result.kwh_per_good_part, 3), money(e.result.cost, cur) if e.result.cost is not None else DASH))
    return Table("Energy", ("Machine", "kWh", "Idle kWh", "kWh per good part", "Cost"), tuple(rows))


def _risk_table(r: Report) -> Table:
    rows = tuple((m.machine, pct(m.oee), hours(m.downtime_s), str(m.stops), ", ".join(m.standing_alarms) or DASH)
                 for m in r.at_risk)
    return Table("Machines at risk", ("Machine", "OEE", "Lost", "Stops", "Standing alarms"), rows,
                 "No machine had stops or standing alarms.",
                 "Ranked by standing alarms, then time lost to stops.")
