"""OEE over time (``/hmi/oee?scope=PATH&range=7d&by=shift``): the OEE of a site, area, line or machine per
shift or per day over a chosen range, with availability, effectiveness, quality, parts and the losses in
money; then machine against machine and line against line over the whole range. Every figure comes from
``services.kpi`` as the API's ``/oee/shifts`` and ``/oee`` answer it.

The range: a preset (today, yesterday, the last 7 or 30 days) or ``from``/``to`` dates (the site's local days,
both included). A reversed or too long range is refused with a message; the page keeps the last valid one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.errors import NotFound
from plantlink.hmi import data, oeefmt
from plantlink.hmi.export import Spec, export_menu
from plantlink.hmi.widgets import Hmi, frame, local_time, money, not_found, open_object, zone_note
from plantlink.identity import Principal
from plantlink.services.kpi import Figures, OeeReport

PRESETS = {"today": "Today", "yesterday": "Yesterday", "7d": "Last 7 days", "30d": "Last 30 days"}
BY = {"shift": "By shift", "day": "By day"}
MAX_DAYS = 31
DEFAULT = "7d"
OEE_COLOR, A_COLOR, P_COLOR, Q_COLOR = "#455a64", "#8d6e63", "#5c6bc0", "#26a69a"


class RangeError(ValueError):
    """A range the page refuses (reversed, empty, too long, not a date), with the words to show."""


@dataclass(frozen=True)
class Range:
    first: date  # local days, both included
    last: date
    preset: str | None

    def bounds(self, tz: str) -> tuple[int, int]:
        zone = ZoneInfo(tz)

        def at(d: date) -> int:
            return int(datetime.combine(d, dtime(0, 0), tzinfo=zone).timestamp() * 1_000_000)

        return at(self.first), at(self.last + timedelta(days=1))

    def query(self) -> dict[str, str]:
        if self.preset:
            return {"range": self.preset}
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def choose(tz: str, preset: str | None, first: str | None, last: str | None, today: date | None = None) -> Range:
    """The range a request asks for; ``RangeError`` for one the page refuses."""
    t = today or datetime.now(ZoneInfo(tz)).date()
    if first or last:
        try:
            a, b = date.fromisoformat(first or ""), date.fromisoformat(last or "")
        except ValueError:
            raise RangeError("Give both dates as YYYY-MM-DD.") from None
        if b < a:
            raise RangeError(f"The range is reversed: 'to' ({b}) is before 'from' ({a}).")
        if (b - a).days + 1 > MAX_DAYS:
            raise RangeError(f"The range is too long: {(b - a).days + 1} days, at most {MAX_DAYS}.")
        return Range(a, b, None)
    name = preset or DEFAULT
    if name not in PRESETS:
        raise RangeError(f"Unknown range {name!r}: choose one of {', '.join(PRESETS.values())}.")
    back = {"today": 0, "yesterday": 1, "7d": 6, "30d": 29}[name]
    return Range(t - timedelta(days=back), t - timedelta(days=1) if name == "yesterday" else t, name)


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
    refused = None
    try:
        rng = choose(site.timezone, q.get("range"), q.get("from"), q.get("to"))
    except RangeError as exc:
        refused, rng = str(exc), choose(site.timezone, None, None, None)
    start, end = rng.bounds(site.timezone)
    ui.page_title(f"OEE {scope} · plantlink")
    crumbs: list[tuple[str, str | None]] = [(h.services.plant.enterprise, h.page(""))]
    if scope in h.view.lines:
        crumbs.append((scope.rsplit("/", 1)[-1], h.page("line", scope)))
    frame(principal, [*crumbs, (f"OEE over time: {scope}", None)])

    def go(r: Range, kind: str) -> None:
        ui.navigate.to(f"{h.page('oee')}?{urlencode({'scope': scope, **r.query(), 'by': kind})}")

    _range_bar(site.timezone, rng, by, refused, go)
    whole, rows = await asyncio.to_thread(data.oee_over_time, h.services, principal, scope, start, end, by)
    ui.label(f"{local_time(start, site.timezone, True)} to {local_time(whole.end_us, site.timezone, True)}. "
             f"{zone_note(site.timezone)}").classes("pl-muted text-sm").props('data-testid="zone"')
    _periods_panel(h, principal, site.timezone, by, rows, Spec("oee", start, end, {"scope": scope, "by": by}))
    _compare_panel(h, whole)
    return None


def _range_bar(tz: str, rng: Range, by: str, refused: str | None, go: Any) -> None:
    with ui.row().classes("items-center gap-3 w-full flex-wrap"):
        ui.toggle(dict(PRESETS), value=rng.preset,
                  on_change=lambda e: e.value and go(choose(tz, e.value, None, None), by)
                  ).props('data-testid="preset" no-caps').classes("pl-touch")
        first = ui.input("From", value=rng.first.isoformat()).props('type=date data-testid="from"')
        last = ui.input("To", value=rng.last.isoformat()).props('type=date data-testid="to"')
        ui.toggle(dict(BY), value=by, on_change=lambda e: go(rng, e.value)
                  ).props('data-testid="by" no-caps').classes("pl-touch")
    error = ui.label(refused or "").classes("pl-dataproblem text-base").props('data-testid="range-error" role="alert"')
    error.set_visibility(bool(refused))

    def apply() -> None:
        try:
            go(choose(tz, None, first.value, last.value), by)
        except RangeError as exc:  # say so; the page keeps the range it shows
            error.set_text(str(exc))
            error.set_visibility(True)

    ui.button("Show", on_click=apply).props('data-testid="apply" no-caps').classes("pl-touch")


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


def _compare_panel(h: Hmi, whole: OeeReport) -> None:
    machines, lines = data.compared(h.view, whole)
    if not machines:
        return
    with ui.element("div").classes("pl-panel w-full min-w-0").props('data-testid="compare"'):
        ui.label("Over the whole range").classes("text-lg font-semibold mb-2")
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
