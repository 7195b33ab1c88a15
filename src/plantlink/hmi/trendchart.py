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
from plantlink.services.trends import Marks

#: Pen colours: quiet (ISA-101: colour is for what needs attention), none of them an alarm's colour.
PEN_COLOURS = ("#37474f", "#1565c0", "#6d4c41", "#00695c", "#5e35b1", "#78909c", "#ad1457", "#2e7d32")
SETPOINT_SUFFIXES = ("_setpoint", "_sp")
MAX_PENS = 8
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
            zoom: tuple[float, float] | None, marks: Marks | None = None) -> dict[str, Any]:
    """Without ``zoom`` the browser keeps its own (a refresh must not undo a zoom under way)."""
    units = units_of(pens)
    z = {"start": zoom[0], "end": zoom[1]} if zoom is not None else {}
    right = max(0, len(units) - 1)
    out: dict[str, Any] = {
        "animation": False,
        "legend": {"top": 0, "data": [pen_label(p) for p in pens]},
        "grid": {"left": 60, "right": 20 + 60 * right, "top": 40, "bottom": 70},
        "tooltip": {"trigger": "axis", ":formatter": tooltip_js(tz, pens)},
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


def _mark_tip_js(tz: str) -> str:
    return ("(p) => { const f = " + axis_time_js(tz, True) + "; const d = p.data || {};"
            " return p.name + '<br/>' + f(d.start_ms !== undefined ? d.start_ms : d.coord[0][0]) + ' to ' +"
            " (d.end_ms ? f(d.end_ms) : 'now'); }")


def tooltip_js(tz: str, pens: Sequence[TagView]) -> str:
    """The cursor readout: the time in the site's zone, then each pen's value at the cursor rounded as the pages
    show it (``plantlink.display.number_text``: the tag's decimals, else by magnitude) with its unit."""
    meta = [{"d": decimals_of(p), "u": unit_symbol(p.unit), "n": p.label or p.name} for p in pens] or [
        {"d": None, "u": "", "n": ""}]
    rounded = ("(v, d) => v === null || v === undefined ? '—' : (d !== null ? v.toFixed(d) : Math.abs(v) >= 100 ?"
               " v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : Number(v.toPrecision(3)).toString())")
    return ("(ps) => { const f = " + axis_time_js(tz, True) + "; const r = " + rounded + "; const m = "
            + json.dumps(meta) + "; ps = ps.filter(p => (p.seriesIndex || 0) < m.length);"
            " const head = ps.length ? f(ps[0].value[0]) : '';"
            " return head + ps.map(p => { const k = m[p.seriesIndex || 0];"
            " return '<br/>' + p.marker + (p.seriesName ? k.n + ': ' : '') + r(p.value[1], k.d)"
            " + (k.u ? ' ' + k.u : ''); }).join(''); }")
