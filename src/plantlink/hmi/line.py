"""Line page: the machines (live tiles), the OEE breakdown (availability, effectiveness, quality) per machine
and for the line with the cost of losses, the constraint (bottleneck) with its evidence, and the downtime
Pareto by reason, machine or shift, over the range of the picker (``hmi.rangepick``); with "compare", the
previous period's OEE and lost time beside; the energy panel (``hmi.energypanel``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.hmi import data, oeefmt
from plantlink.hmi.data import Kpi, LineView
from plantlink.hmi.energypanel import energy_panel, line_energy
from plantlink.hmi.export import Spec, export_menu
from plantlink.hmi.guard import live_timer
from plantlink.hmi.handover import handover_panel
from plantlink.hmi.rangepick import RangePicker, address, open_range, versus
from plantlink.hmi.report import report_menu
from plantlink.hmi.timerange import Limits, Picked
from plantlink.hmi.widgets import (
    LIVE_PERIOD_S,
    Hmi,
    TileSet,
    duration,
    frame,
    machine_tile,
    money,
    open_object,
    pct,
)
from plantlink.identity import Principal

if TYPE_CHECKING:
    from plantlink.services.kpi import Analysis

PARETO_COLOR = "#607d8b"
CUMULATIVE_COLOR = "#263238"
PREVIOUS_COLOR = "#b0bec5"


LIMITS = Limits(max_days=31, default="today")


async def line_page(request: Request, path: str) -> Response | None:
    opened = open_object(request, lambda h: h.view.line(path))
    if isinstance(opened, Response):
        return opened
    principal, h, ln = opened
    tz = h.view.site(ln.site).timezone
    picked, refused = open_range(h, ln.site, tz, request.query_params, LIMITS)
    start, end = picked.start_us, picked.end_us
    h.hub.ensure_started()
    ui.page_title(f"{ln.name} · plantlink")
    frame(principal, [(h.services.plant.enterprise, h.page("")), (ln.site, None), (f"{ln.area} / {ln.name}", None)])
    with ui.row().classes("items-center gap-4 w-full"):
        ui.label(ln.description or ln.name).classes("text-xl")
        ui.link("OEE over time", h.oee(ln.path)).classes("pl-link pl-touch").props('data-testid="oee-link"')
        ui.link("Wallboard", h.page("wall", ln.path)).classes("pl-link pl-touch").props('data-testid="wall-link"')
        report_menu(h, principal, ln.path, lambda: (picked.start_us, picked.end_us))
    RangePicker(tz, picked, LIMITS, refused, lambda q: address(h.page("line", ln.path), q)).build()
    with ui.row().classes("gap-3 flex-wrap"):
        tiles = {m.path: machine_tile(h, m, h.hub.state(m.path)) for m in ln.machines}
    tile_set = TileSet(tiles)
    live_timer(LIVE_PERIOD_S, tile_set.update)
    prev_start, prev_end = picked.previous
    kpis, analysis, energy, before = await asyncio.gather(
        asyncio.to_thread(data.line_kpis, h.view, ln, start, end, principal),
        asyncio.to_thread(data.bottleneck_of, h.view, principal, ln.path, start, end),
        asyncio.to_thread(line_energy, h.services, principal, ln.path, start, end),
        asyncio.to_thread(data.line_kpis, h.view, ln, prev_start, prev_end, principal) if picked.compare
        else asyncio.sleep(0, None),
    )
    for p, refs in tiles.items():
        refs.show_kpi(kpis.get(p))
    with ui.element("div").classes("grid grid-cols-1 2xl:grid-cols-2 gap-3 w-full"):
        _oee_panel(h, principal, ln, kpis, picked, before)
        _bottleneck_panel(ln, analysis, _span(picked))
        energy_panel(energy, _span(picked), lambda: export_menu(h, principal, "energy", lambda: Spec(
            "energy", picked.start_us, picked.end_us, {"scope": ln.path, "by": "machine"}), "energy-export"))
        await _pareto_panel(h, principal, ln, picked)
        await handover_panel(h, principal, ln)
    return None


def _span(picked: Picked) -> str:
    """The range a panel shows, as attributes of the panel."""
    return f'data-start-us="{picked.start_us}" data-end-us="{picked.end_us}"'


def _oee_panel(h: Hmi, who: Principal, ln: LineView, kpis: dict[str, Kpi | None], picked: Picked,
               before: dict[str, Kpi | None] | None = None) -> None:
    """The OEE table, with its export; with ``before`` (the previous period's figures), each OEE beside the
    previous one and the change in points."""
    span = _span(picked)
    with ui.element("div").classes("pl-panel min-w-0 2xl:col-span-2").props(f'data-testid="oee" {span}'):
        with ui.row().classes("items-center gap-4 mb-2"):
            ui.label("OEE: availability x effectiveness x quality").classes("text-lg font-semibold")
            export_menu(h, who, "oee", lambda: Spec("oee", picked.start_us, picked.end_us,
                                                    {"scope": ln.path, "by": "machine"}), "oee-export")
        rows = []
        for m_path, name in [(m.path, m.name) for m in ln.machines] + [(ln.path, "Line")]:
            k = kpis.get(m_path)
            if k is None:
                continue
            r = k.result
            rows.append({"name": name, "a": oeefmt.ratio(r.availability), "e": oeefmt.ratio(r.effectiveness),
                         "q": oeefmt.ratio(r.quality_rate), "oee": oeefmt.oee(r), "parts": f"{k.parts:,.0f}",
                         "gap": f"{k.inputs.gap_pq:,.0f}", "avail_loss": duration(r.availability_loss_s),
                         "perf_loss": duration(max(r.performance_loss_s, 0.0)), "scrap": f"{k.inputs.sq:,.0f}",
                         **_previous(k, before.get(m_path) if before is not None else None)})
        if not rows:
            ui.label("No machine of this line has production counters.").classes("pl-muted")
            return
        cols = [("name", "Machine"), ("a", "Availability"), ("e", "Effectiveness"), ("q", "Quality"), ("oee", "OEE"),
                *([("prev_oee", "OEE, previous period"), ("change", "Change")] if before is not None else []),
                ("parts", "Parts"), *([("prev_parts", "Parts, previous")] if before is not None else []),
                ("gap", "In data gaps"), ("avail_loss", "Stopped"), ("perf_loss", "Slow running"), ("scrap", "Scrap")]
        ui.table(columns=[{"name": c, "label": lbl, "field": c, "align": "left"} for c, lbl in cols], rows=rows,
                 row_key="name").props("flat dense wrap-cells").classes("w-full")
        _oee_notes(ln, kpis)
        line = kpis.get(ln.path)
        if line is not None and line.cost is not None:
            c = line.cost
            cur = c["currency"]
            ui.label(f"Cost of losses: {money(c['total'], cur)} (stops {money(c['availability_loss'], cur)}, "
                     f"slow running {money(c['performance_loss'], cur)}, scrap {money(c['quality_loss'], cur)})"
                     ).classes("text-base mt-2").props('data-testid="line-cost"')
            old = before.get(ln.path) if before is not None else None
            if old is not None and old.cost is not None:
                ui.label(f"Previous period: {money(old.cost['total'], old.cost['currency'])}").classes(
                    "text-base").props('data-testid="line-cost-previous"')


def _previous(k: Kpi, old: Kpi | None) -> dict[str, str]:
    if old is None:
        return {"prev_oee": "—", "change": "—", "prev_parts": "—"}
    return {"prev_oee": oeefmt.oee(old.result), "change": versus(k.result, old.result),
            "prev_parts": f"{old.parts:,.0f}"}


def _oee_notes(ln: LineView, kpis: dict[str, Kpi | None]) -> None:
    """Under the OEE table: why a figure is a data problem, and what was counted in data gaps (not in OEE)."""
    named = [(m.name, kpis.get(m.path)) for m in ln.machines] + [("Line", kpis.get(ln.path))]
    for name, k in named:
        if k is None or not (k.result.data_problem or k.result.notes):
            continue
        text = f"{name}: {oeefmt.explanation(k)}"
        note = ui.label(f"{oeefmt.MARK} Data problem. {text}" if k.result.data_problem else text)
        note.classes("text-sm mt-1" + (" pl-dataproblem" if k.result.data_problem else " pl-muted"))
        note.props(f'data-testid="oee-note" data-problem="{str(k.result.data_problem).lower()}"')


def _bottleneck_panel(ln: LineView, analysis: Analysis | None, span: str = "") -> None:
    with ui.element("div").classes("pl-panel min-w-0").props(f'data-testid="bottleneck" {span}'):
        ui.label("Constraint (bottleneck)").classes("text-lg font-semibold mb-1")
        if analysis is None:
            ui.label("No machine of this line has state rules.").classes("pl-muted")
            return
        top = analysis.bottleneck
        name = top.rsplit("/", 1)[-1] if top else "none"
        if analysis.tied:  # equal evidence: say so, never pick one
            name = "Tie: " + " and ".join(m.rsplit("/", 1)[-1] for m in analysis.tied)
        ui.label(name).classes("pl-big").props(f'data-testid="bottleneck-name" data-machine="{top or ""}" '
                                               f'data-tie="{str(bool(analysis.tied)).lower()}"')
        ui.label(analysis.explanation).classes("text-sm")
        rows = []
        for m in analysis.ranking:
            f = analysis.machines[m]
            sh = f.shares
            rows.append({"machine": m.rsplit("/", 1)[-1], "mean": duration(f.mean_active_s),
                         "active": pct(f.active_share), "starved": pct(sh.get("starved", 0.0)),
                         "blocked": pct(sh.get("blocked", 0.0)), "sole": pct(f.momentary_sole)})
        cols = [("machine", "Machine"), ("mean", "Mean active period"), ("active", "Active"), ("starved", "Starved"),
                ("blocked", "Blocked"), ("sole", "Sole bottleneck")]
        ui.table(columns=[{"name": c, "label": lbl, "field": c, "align": "left"} for c, lbl in cols], rows=rows,
                 row_key="machine").props("flat dense").classes("w-full mt-2")
        ui.label(analysis.method).classes("pl-muted text-xs mt-1")


NO_DOWNTIME = "No downtime in this period"


async def _pareto_panel(h: Hmi, who: Principal, ln: LineView, picked: Picked) -> None:
    with ui.element("div").classes("pl-panel min-w-0").props(f'data-testid="pareto" {_span(picked)}'):
        with ui.row().classes("items-center gap-4"):
            ui.label("Downtime Pareto").classes("text-lg font-semibold")
            by = ui.toggle({"reason": "By reason", "machine": "By machine", "shift": "By shift"}, value="reason"
                           ).props("no-caps").classes("pl-touch")
            export_menu(h, who, "pareto", lambda: Spec("pareto", picked.start_us, picked.end_us,
                                                          {"line": ln.path, "by": by.value}),
                        "pareto-export")
        chart = ui.echart(_pareto_options([], [], [])).classes("w-full h-72")
        note = ui.label("").classes("pl-muted text-sm").props('data-testid="pareto-note"')

        async def show(kind: str) -> None:
            p = await asyncio.to_thread(data.pareto, h.services, who, ln.path, kind, picked.start_us, picked.end_us)
            rows = p["rows"]
            chart.options.clear()
            chart.options.update(_pareto_options([_key_label(kind, r["key"]) for r in rows],
                                                 [round(r["duration_s"] / 60, 1) for r in rows],
                                                 [round(100 * r["cumulative"], 1) for r in rows]))
            old = await asyncio.to_thread(data.pareto, h.services, who, ln.path, kind, *picked.previous) \
                if picked.compare else None
            if old is not None:  # the previous period's lost time for the same keys, beside
                lost = {r["key"]: r["duration_s"] for r in old["rows"]}
                chart.options["series"].insert(1, {"type": "bar", "name": "Previous period (min)",
                                                   "data": [round(lost.get(r["key"], 0.0) / 60, 1) for r in rows],
                                                   "itemStyle": {"color": PREVIOUS_COLOR}})
                chart.options["legend"] = {"top": 0}
            if not rows:  # not bare axes: say why
                chart.options["title"] = {"text": NO_DOWNTIME, "left": "center", "top": "middle",
                                          "textStyle": {"fontSize": 16, "fontWeight": "normal"}}
            chart.update()
            tot, mic, unk = p["total"], p["micro"], p["unknown"]
            note.set_text(f"{NO_DOWNTIME}." if not rows else
                          f"{tot['count']} stops, {duration(tot['duration_s'])}; micro-stops apart: "
                          f"{mic['count']}, {duration(mic['duration_s'])}; no data: {duration(unk['duration_s'])}"
                          + (f". Previous period: {old['total']['count']} stops, "
                             f"{duration(old['total']['duration_s'])}" if old is not None else ""))
            note.props(f'data-empty="{str(not rows).lower()}"')

        by.on_value_change(lambda e: show(e.value))
        await show("reason")


def _key_label(kind: str, key: str | None) -> str:
    if key is None:
        return "(no reason)" if kind == "reason" else "(none)"
    if kind == "machine":
        return key.rsplit("/", 1)[-1]
    return key


def _pareto_options(labels: list[str], minutes: list[float], cumulative: list[float]) -> dict[str, Any]:
    return {
        "animation": False,
        "grid": {"left": 50, "right": 50, "top": 30, "bottom": 70},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"rotate": 25, "interval": 0}},
        "yAxis": [{"type": "value", "name": "min"}, {"type": "value", "name": "cum. %", "max": 100}],
        "series": [
            {"type": "bar", "name": "Lost time (min)", "data": minutes, "itemStyle": {"color": PARETO_COLOR}},
            {"type": "line", "name": "Cumulative %", "yAxisIndex": 1, "data": cumulative,
             "itemStyle": {"color": CUMULATIVE_COLOR}},
        ],
    }
