"""The trend's ECharts options: one series per pen (pens of one unit share a y axis; each further unit gets its
own), the cursor readout (every pen's value at the cursor, rounded as the pages show it, with its unit, the
time in the site's zone) and the marks on the time axis (alarm activations, downtime with its reason)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from plantlink.display import unit_symbol
from plantlink.hmi import theme
from plantlink.hmi.data import MachineView, TagView
from plantlink.hmi.widgets import axis_time_js
from plantlink.services.annotations import Annotation
from plantlink.services.trends import Marks

#: Pen colours: quiet (ISA-101: colour is for what needs attention), none of them an alarm's colour.
PEN_COLOURS = ("#37474f", "#1565c0", "#6d4c41", "#00695c", "#5e35b1", "#78909c", "#ad1457", "#2e7d32")
SETPOINT_SUFFIXES = ("_setpoint", "_sp")
MAX_PENS = 8
NOTE_COLOUR = "#4a148c"
NOTE_LABEL = 24
Points = list[list[float | None]]


def default_pens(m: MachineView, first: TagView | None = None) -> list[TagView]:
    """The pens a machine's trend opens with: ``first`` (or the first measured value that has a setpoint tag,
    else the first float tag) and, when it has one, its setpoint: a tag named ``<base>_setpoint`` (or ``_sp``)
    of the same unit where the value is ``<base>`` or ``<base>_<something>``, or a deviation alarm's setpoint."""
    numeric = [t for t in m.tags if t.type in ("float", "int")]
    if first is None:
        paired = [t for t in numeric if setpoint_of(m, t) is not None]
        floats = [t for t in numeric if t.type == "float" and not t.writable]
        choices = paired or floats or numeric
        if not choices:
            return []
        first = choices[0]
    sp = setpoint_of(m, first)
    return [first] if sp is None else [first, sp]


def setpoint_of(m: MachineView, tag: TagView) -> TagView | None:
    if tag.writable:
        return None
    by_name = {t.name: t for t in m.tags if t.type in ("float", "int")}
    spec = next((t for t in m.model.tags if t.name == tag.name), None)
    for alarm in (spec.alarms if spec is not None else []):
        if alarm.setpoint is not None and alarm.setpoint in by_name:
            return by_name[alarm.setpoint]
    for sp in by_name.values():
        for suffix in SETPOINT_SUFFIXES:
            base = sp.name.removesuffix(suffix)
            if (sp.name.endswith(suffix) and sp.unit == tag.unit and sp is not tag
                    and (tag.name == base or tag.name.startswith(base + "_"))):
                return sp
    return None


def pen_label(t: TagView) -> str:
    return (t.label or t.name) + (f" ({unit_symbol(t.unit)})" if t.unit else "")


def decimals_of(t: TagView) -> int | None:
    return 0 if t.type in ("int", "bool") else t.decimals


def units_of(pens: Sequence[TagView]) -> list[str]:
    """One entry per y axis: the units of the pens, in the order they first appear."""
    out: list[str] = []
    for p in pens:
        if unit_symbol(p.unit) not in out:
            out.append(unit_symbol(p.unit))
    return out


def options(pens: Sequence[TagView], series: Sequence[Points], rng: tuple[int, int], tz: str,
            zoom: tuple[float, float] | None, marks: Marks | None = None, notes: Sequence[Annotation] = (),
            chart_id: int | None = None) -> dict[str, Any]:
    """Without ``zoom`` the browser keeps its own (a refresh must not undo a zoom under way)."""
    units = units_of(pens)
    z = {"start": zoom[0], "end": zoom[1]} if zoom is not None else {}
    right = max(0, len(units) - 1)
    out: dict[str, Any] = {
        "animation": False,
        "legend": {"top": 0, "data": [pen_label(p) for p in pens]},
        "grid": {"left": 60, "right": 20 + 60 * right, "top": 40, "bottom": 70},
        "tooltip": {"trigger": "axis", ":formatter": tooltip_js(tz, pens, chart_id)},
        "xAxis": {"type": "time", "min": rng[0] // 1000, "max": rng[1] // 1000,
                  "axisLabel": {":formatter": axis_time_js(tz)},
                  "axisPointer": {"label": {":formatter": f"(p) => ({axis_time_js(tz, True)})(p.value)"}}},
        "yAxis": [{"type": "value", "scale": True, "name": u, "position": "left" if i == 0 else "right",
                   "offset": 0 if i < 2 else 60 * (i - 1), "alignTicks": i > 0} for i, u in enumerate(units)]
        or [{"type": "value", "scale": True}],
        "dataZoom": [{"type": "inside", **z, "filterMode": "none"},
                     {"type": "slider", **z, "filterMode": "none", "height": 28}],
        "series": [_series(p, i, units, pts) for i, (p, pts) in enumerate(zip(pens, series, strict=True))],
    }
    if marks is not None:
        out["series"].append(marks_series(marks, tz, rng))
    if notes:
        out["series"].append(notes_series(notes, tz, rng))
    return out


def _series(p: TagView, i: int, units: list[str], points: Points) -> dict[str, Any]:
    colour = PEN_COLOURS[i % len(PEN_COLOURS)]
    return {"type": "line", "name": pen_label(p), "showSymbol": False, "data": points,
            "yAxisIndex": units.index(unit_symbol(p.unit)),
            "lineStyle": {"color": colour, "type": "dashed" if p.writable else "solid"}, "itemStyle": {"color": colour},
            "step": "end" if p.type == "int" or p.writable else False}


def marks_series(marks: Marks, tz: str, rng: tuple[int, int]) -> dict[str, Any]:
    """An empty series that carries the marks: downtime and alarm activations as shaded spans of the time
    axis (an alarm in its priority's colour, downtime in its state's), the reason or alarm on hover."""
    areas: list[list[dict[str, Any]]] = []
    for d in marks.downtime:
        look = theme.state_look(d.state)
        name = f"Downtime: {d.reason or look.label}"
        areas.append(_area(name, d.start_us, d.end_us, rng, look.background, 0.35, "downtime"))
    for a in marks.alarms:
        name = f"Alarm ({a.priority}): {a.alarm.rsplit(':', 1)[-1]}"
        areas.append(_area(name, a.start_us, a.end_us, rng, theme.priority_look(a.priority).background, 0.18,
                           "alarm"))
    return {"type": "line", "name": "marks", "data": [], "silent": False, "tooltip": {"show": True},
            "markArea": {"silent": False, "label": {"show": False}, "data": areas,
                         "tooltip": {"trigger": "item", ":formatter": _mark_tip_js(tz)}}}


def _area(name: str, start_us: int, end_us: int | None, rng: tuple[int, int], colour: str, opacity: float,
          kind: str) -> list[dict[str, Any]]:
    hi = rng[1] if end_us is None else end_us
    return [{"name": name, "xAxis": max(start_us, rng[0]) // 1000, "itemStyle": {"color": colour, "opacity": opacity},
             "kind": kind, "start_ms": start_us // 1000, "end_ms": None if end_us is None else end_us // 1000},
            {"xAxis": min(hi, rng[1]) // 1000}]


def notes_series(notes: Sequence[Annotation], tz: str, rng: tuple[int, int]) -> dict[str, Any]:
    """People's notes: a line at a note's time (a shaded span for a span), its text shortened on the line and in
    full, with its author, on hover."""
    lines, areas = [], []
    for n in notes:
        short = n.text if len(n.text) <= NOTE_LABEL else n.text[:NOTE_LABEL - 1] + "…"
        name = f"Note by {n.author}: {n.text}"
        at = max(n.start_us, rng[0]) // 1000
        lines.append({"name": name, "xAxis": at, "start_ms": n.start_us // 1000, "note": n.id,
                      "end_ms": None if n.end_us is None else n.end_us // 1000,
                      "label": {"formatter": "✎ " + short}})
        if n.end_us is not None:
            areas.append(_area(name, n.start_us, n.end_us, rng, NOTE_COLOUR, 0.12, "note"))
    tip = {"trigger": "item", ":formatter": _mark_tip_js(tz)}
    return {"type": "line", "name": "notes", "data": [],
            "markLine": {"symbol": ["none", "none"], "silent": False, "data": lines, "tooltip": tip,
                         "lineStyle": {"color": NOTE_COLOUR, "type": "solid", "width": 2},
                         "label": {"position": "insideEndTop", "color": NOTE_COLOUR}},
            "markArea": {"silent": False, "data": areas, "tooltip": tip}}


def _mark_tip_js(tz: str) -> str:
    """A mark's hover text: what it is (people's text escaped: the tooltip is HTML) and when, in the site's zone."""
    return ("(p) => { const f = " + axis_time_js(tz, True) + "; const d = p.data || {};"
            " const esc = (s) => String(s).replace(/[&<>\"']/g, (c) => '&#' + c.charCodeAt(0) + ';');"
            " const t0 = d.start_ms !== undefined ? d.start_ms : d.coord[0][0];"
            " return esc(p.name) + '<br/>' + f(t0) + (d.end_ms ? ' to ' + f(d.end_ms) : (d.note ? '' : ' to now'));"
            " }")


def tooltip_js(tz: str, pens: Sequence[TagView], chart_id: int | None = None) -> str:
    """The cursor readout: the time in the site's zone, then EVERY pen's value at the cursor, rounded as the pages
    show values (``plantlink.display.number_text``: the tag's decimals, else by magnitude), with its unit.

    ECharts hands the formatter only the series whose point is nearest the cursor (pens are sampled at different
    times), so the others are looked up in the chart's data (``chart_id``): each pen's point nearest that time."""
    meta = [{"d": decimals_of(p), "u": unit_symbol(p.unit), "n": p.label or p.name,
             "c": PEN_COLOURS[i % len(PEN_COLOURS)]} for i, p in enumerate(pens)] or [
        {"d": None, "u": "", "n": "", "c": PEN_COLOURS[0]}]
    rounded = ("(v, d) => v === null || v === undefined ? '—' : (d !== null ? v.toFixed(d) : Math.abs(v) >= 100 ?"
               " v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : Number(v.toPrecision(3)).toString())")
    nearest = ("(d, t) => { if (!d || !d.length) return undefined; let lo = 0, hi = d.length - 1;"
               " while (lo < hi) { const mid = (lo + hi) >> 1; if (d[mid][0] < t) lo = mid + 1; else hi = mid; }"
               " if (lo > 0 && Math.abs(d[lo - 1][0] - t) <= Math.abs(d[lo][0] - t)) lo -= 1; return d[lo][1]; }")
    chart = "null" if chart_id is None else f"getElement({int(chart_id)})"
    return ("(ps) => { const f = " + axis_time_js(tz, True) + "; const r = " + rounded + "; const near = " + nearest
            + "; const m = " + json.dumps(meta) + "; if (!ps.length) return '';"
            " const esc = (s) => String(s).replace(/[&<>\"']/g, (c) => '&#' + c.charCodeAt(0) + ';');"
            " const t = ps[0].axisValue !== undefined ? ps[0].axisValue : ps[0].value[0];"
            " const el = " + chart + "; const o = el && el.chart ? el.chart.getOption() : null;"
            " const by = {}; ps.forEach(p => { by[p.seriesIndex || 0] = p; });"
            " const dot = (c) => '<span style=\"display:inline-block;margin-right:4px;border-radius:10px;"
            "width:10px;height:10px;background-color:' + c + ';\"></span>';"
            " return f(t) + m.map((k, i) => { const p = by[i];"
            " const v = p ? p.value[1] : (o && o.series[i] ? near(o.series[i].data, t) : undefined);"
            " if (!p && v === undefined) return '';"
            " return '<br/>' + dot(k.c) + (p && !p.seriesName ? '' : esc(k.n) + ': ') + r(v, k.d)"
            " + (k.u ? ' ' + esc(k.u) : ''); }).join(''); }")
