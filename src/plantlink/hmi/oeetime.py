"""OEE over time (``/hmi/oee?scope=PATH&range=7d&by=shift``): the OEE of a site, area, line or machine per
shift or per day over a chosen range, with availability, effectiveness, quality, parts and the losses in
money; then machine against machine and line against line over the whole range. Every figure comes from
``services.kpi`` as the API's ``/oee/shifts`` and ``/oee`` answer it.

The range comes from the shared picker (``hmi.rangepick``: presets, from/to, compare with the previous period;
at most 31 days). A refused range is said with a message; the page keeps the last valid one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.errors import NotFound
from plantlink.hmi import data, oeefmt
from plantlink.hmi.export import Spec, export_menu
from plantlink.hmi.rangepick import RangePicker, address, open_range, versus
from plantlink.hmi.timerange import Limits
from plantlink.hmi.widgets import Hmi, frame, local_time, money, not_found, open_object, zone_note
from plantlink.identity import Principal
from plantlink.services.kpi import Figures, OeeReport

BY = {"shift": "By shift", "day": "By day"}
#: The page's ranges: at most 31 days, the last 7 by default.
LIMITS = Limits(max_days=31, default="7d")
OEE_COLOR, A_COLOR, P_COLOR, Q_COLOR = "#455a64", "#8d6e63", "#5c6bc0", "#26a69a"


@dataclass(frozen=True)
class _Scope:
    site: str
    timezone: str


def _scope(h: Hmi, scope: str) -> _Scope:
    """The scope's site (``NotFound`` for a path that names nothing in the model)."""
    p = scope.strip("/")
    site = h.view.site(p.split("/", 1)[0])
    if p.count("/") >= 1 and not any(x == p or x.startswith(p + "/") for x in h.view.machines):
        raise NotFound(f"no area, line or machine {p!r} in the plant model")
    return _Scope(site.name, site.timezone)


async def oee_page(request: Request) -> Response | None:
    q = request.query_params
    scope = q.get("scope", "").strip("/")
    if not scope:
        return not_found("give the scope: /hmi/oee?scope=site[/area[/line[/machine]]]")
    opened = open_object(request, lambda h: _scope(h, scope))
    if isinstance(opened, Response):
        return opened
    principal, h, site = opened
    by = q.get("by", "shift") if q.get("by") in BY else "shift"
    picked, refused = open_range(h, site.site, site.timezone, q, LIMITS)
    start, end = picked.start_us, picked.end_us
    ui.page_title(f"OEE {scope} · plantlink")
    crumbs: list[tuple[str, str | None]] = [(h.services.plant.enterprise, h.page(""))]
    if scope in h.view.lines:
        crumbs.append((scope.rsplit("/", 1)[-1], h.page("line", scope)))
    frame(principal, [*crumbs, (f"OEE over time: {scope}", None)])

    def url(query: dict[str, str], kind: str = by) -> str:
        return address(h.page("oee"), {"scope": scope, **query, "by": kind})

    RangePicker(site.timezone, picked, LIMITS, refused, url).build()
    ui.toggle(dict(BY), value=by, on_change=lambda e: ui.navigate.to(url(picked.query(), e.value))
              ).props('data-testid="by" no-caps').classes("pl-touch")
    whole, rows = await asyncio.to_thread(data.oee_over_time, h.services, principal, scope, start, end, by)
    before = await asyncio.to_thread(_previous, h, principal, scope, picked.previous) if picked.compare else None
    ui.label(f"{local_time(start, site.timezone, True)} to {local_time(whole.end_us, site.timezone, True)}. "
             f"{zone_note(site.timezone)}").classes("pl-muted text-sm").props('data-testid="zone"')
    _periods_panel(h, principal, site.timezone, by, rows, Spec("oee", start, end, {"scope": scope, "by": by}))
    _compare_panel(h, whole, before)
    return None


def _previous(h: Hmi, who: Principal, scope: str, span: tuple[int, int]) -> OeeReport | None:
    """OEE of the scope over the previous period (the API's ``/oee``); None when it has none."""
    try:
        return h.services.kpi.oee(who, scope, *span)
    except NotFound:
        return None


def _row(name: str, f: Figures, cost: dict[str, float], **extra: str) -> dict[str, str]:
    r = f.result
    return {"name": name, **extra, "a": oeefmt.ratio(r.availability), "e": oeefmt.ratio(r.effectiveness),
            "q": oeefmt.ratio(r.quality_rate), "oee": oeefmt.oee(r), "parts": f"{f.parts:,.0f}",
            "scrap": f"{f.inputs.sq:,.0f}",
            "money": " + ".join(money(v, c) for c, v in sorted(cost.items())) or "—"}


COLS = [("a", "Availability"), ("e", "Effectiveness"), ("q", "Quality"), ("oee", "OEE"), ("parts", "Parts"),
        ("scrap", "Scrap"), ("money", "Losses")]


def _table(first: str, rows: list[dict[str, str]], testid: str) -> None:
    cols = [("name", first), *COLS]
    ui.table(columns=[{"name": c, "label": lbl, "field": c, "align": "left"} for c, lbl in cols], rows=rows,
             row_key="name").props(f'flat dense wrap-cells data-testid="{testid}"').classes("w-full")


def _periods_panel(h: Hmi, who: Principal, tz: str, by: str, reports: list[OeeReport], spec: Spec) -> None:
    with ui.element("div").classes("pl-panel w-full min-w-0").props('data-testid="periods"'):
        with ui.row().classes("items-center gap-4 mb-2"):
            ui.label("OEE by shift" if by == "shift" else "OEE by day").classes("text-lg font-semibold")
            export_menu(h, who, "oee", lambda: spec, "periods-export")
        if not reports:
            ui.label("No shift in this range." if by == "shift" else "No day in this range.").classes("pl-muted")
            return
        rows = []
        for r in reports:
            when = local_time(r.start_us, tz, True)[:10] if by == "day" else \
                f"{local_time(r.start_us, tz, True)[:16]} {r.shift}"
            rows.append(_row(when, r.total, data.losses_money(h.view, r), start=str(r.start_us)))
        ui.echart(_chart([x["name"] for x in rows], [x.total for x in reports])).classes("w-full h-64")
        _table("Shift" if by == "shift" else "Day", rows, "periods-table")


def _compare_panel(h: Hmi, whole: OeeReport, before: OeeReport | None) -> None:
    machines, lines = data.compared(h.view, whole)
    if not machines:
        return
    with ui.element("div").classes("pl-panel w-full min-w-0").props('data-testid="compare"'):
        ui.label("Over the whole range").classes("text-lg font-semibold mb-2")
        if before is not None:  # the previous period of equal length, beside
            now, old = whole.total.result, before.total.result
            ui.label(f"OEE {oeefmt.oee(now)} vs {oeefmt.oee(old)} in the previous period, {versus(now, old)}"
                     ).classes("text-base").props('data-testid="oee-versus"')
            _table("Period", [_row("This range", whole.total, data.losses_money(h.view, whole)),
                              _row("Previous period", before.total, data.losses_money(h.view, before))],
                   "compare-previous")
        for what, found in (("Line", lines), ("Machine", machines)):
            if not found:
                continue
            names = [p.rsplit("/", 1)[-1] for p, _, _ in found]
            ui.echart(_chart(names, [f for _, f, _ in found], bars=True)).classes("w-full h-56")
            _table(what, [_row(n, f, c) for n, (_, f, c) in zip(names, found, strict=True)],
                   f"compare-{what.lower()}")


def _pct(x: float | None) -> float | None:
    return None if x is None or x != x or x > 1.0 + 1e-9 else round(100 * x, 1)


def _chart(labels: list[str], figures: list[Figures], bars: bool = False) -> dict[str, Any]:
    def series(name: str, pick: Any, color: str, kind: str) -> dict[str, Any]:
        return {"type": kind, "name": name, "data": [_pct(pick(f.result)) for f in figures],
                "itemStyle": {"color": color}}

    other = "bar" if bars else "line"
    return {"animation": False, "tooltip": {"trigger": "axis"}, "legend": {"top": 0},
            "grid": {"left": 45, "right": 20, "top": 35, "bottom": 60},
            "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 25}},
            "yAxis": {"type": "value", "name": "%", "max": 100},
            "series": [series("OEE", lambda r: None if r.data_problem else r.oee, OEE_COLOR, "bar"),
                       series("Availability", lambda r: r.availability, A_COLOR, other),
                       series("Effectiveness", lambda r: r.effectiveness, P_COLOR, other),
                       series("Quality", lambda r: r.quality_rate, Q_COLOR, other)]}
