"""A trend of one tag's history that zooms and pans (ECharts dataZoom). On every zoom or pan the visible window
(with half a window of margin each side) is fetched again from the historian, downsampled (MinMaxLTTB) to
about ``POINTS`` points: a zoom shows the detail of the new range, not a stretched coarse picture."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nicegui import ui

from plantlink.display import unit_symbol
from plantlink.hmi import data
from plantlink.hmi.data import MachineView, TagView
from plantlink.hmi.export import Spec, export_menu
from plantlink.hmi.guard import live_timer
from plantlink.hmi.theme import TREND_LINE
from plantlink.hmi.widgets import Hmi, axis_time_js, local_time, zone_note
from plantlink.identity import Principal
from plantlink.samples import now_us

POINTS = 800
SPANS_S: dict[int, str] = {900: "15 min", 3600: "1 h", 8 * 3600: "8 h", 24 * 3600: "24 h", 7 * 86400: "7 d"}
FOLLOW_S = 5.0  # while showing the whole range, move it on to "now" this often


NO_SAMPLES = "No samples in this range"

class Trend:
    def __init__(self, h: Hmi, machine: MachineView, tz: str, who: Principal):
        self.h = h
        self.who = who
        self.tz = tz
        self.tags = {t.path: t for t in machine.tags if t.type in ("float", "int")}
        floats = [t for t in self.tags.values() if t.type == "float"]
        choices = floats or list(self.tags.values())
        self.tag: TagView | None = choices[0] if choices else None
        self.span_s = 3600
        end = now_us()
        self.range = (end - self.span_s * 1_000_000, end)
        self.zoom = (0.0, 100.0)  # the visible window, in percent of the range
        self.following = True  # the whole range moves on to "now" (not for a range opened from a link)
        #: Every history request (tag id, start_us, end_us): what was fetched for which zoom.
        self.requests: list[tuple[int, int, int]] = []
        self._loading = asyncio.Lock()

    # -- building ---------------------------------------------------------------------------------
    def build(self) -> None:
        if self.tag is None:
            ui.label("This machine has no numeric tag.").classes("pl-muted")
            return
        with ui.row().classes("items-center gap-3 w-full"):
            ui.select({p: (t.label or t.name) + (f" ({unit_symbol(t.unit)})" if t.unit else "")
                       for p, t in self.tags.items()},
                      value=self.tag.path, on_change=lambda e: self.set_tag(e.value)
                      ).props('outlined dense data-testid="trend-tag"').classes("min-w-[220px]")
            ui.toggle(SPANS_S, value=self.span_s if self.following else None, on_change=lambda e: self.set_span(e.value)
                      ).props('no-caps data-testid="trend-span"').classes("pl-touch")
            ui.button(icon="zoom_in", on_click=lambda: self.zoom_by(0.5)).props(
                'flat data-testid="zoom-in" aria-label="Zoom in"').classes("pl-touch")
            ui.button(icon="zoom_out", on_click=lambda: self.zoom_by(2.0)).props(
                'flat data-testid="zoom-out" aria-label="Zoom out"').classes("pl-touch")
            export_menu(self.h, self.who, "trend", self.export_spec, "trend-export")
        self.chart = ui.echart(self._options([])).classes("w-full h-80").props('data-testid="trend-chart"')
        self.chart.on("chart:datazoom", self._on_zoom, throttle=0.3, leading_events=False)
        self.caption = ui.label("").classes("pl-muted text-sm").props('data-testid="trend-range"')
        live_timer(FOLLOW_S, self._follow)

    def _options(self, points: list[list[float | None]], set_zoom: bool = True) -> dict[str, Any]:
        """Without ``set_zoom`` the browser keeps its own zoom (a refresh must not undo a zoom under way)."""
        unit = unit_symbol(self.tag.unit) if self.tag else ""
        zoom = {"start": self.zoom[0], "end": self.zoom[1]} if set_zoom else {}
        return {
            "animation": False,
            "grid": {"left": 60, "right": 20, "top": 20, "bottom": 70},
            # times in the site's zone, not the browser's (one clock per view)
            "tooltip": {"trigger": "axis", ":formatter": _tooltip_js(self.tz, unit, self._decimals())},
            "xAxis": {"type": "time", "min": self.range[0] // 1000, "max": self.range[1] // 1000,
                      "axisLabel": {":formatter": axis_time_js(self.tz)},
                      "axisPointer": {"label": {":formatter": f"(p) => ({axis_time_js(self.tz, True)})(p.value)"}}},
            "yAxis": {"type": "value", "scale": True, "name": unit},
            "dataZoom": [
                {"type": "inside", **zoom, "filterMode": "none"},
                {"type": "slider", **zoom, "filterMode": "none", "height": 28},
            ],
            "series": [{"type": "line", "showSymbol": False, "data": points, "lineStyle": {"color": TREND_LINE},
                        "itemStyle": {"color": TREND_LINE}, "step": "end" if self.tag and self.tag.type == "int"
                        else False}],
        }

    def _decimals(self) -> int | None:
        if self.tag is None:
            return None
        return 0 if self.tag.type in ("int", "bool") else self.tag.decimals

    def export_spec(self) -> Spec | None:
        """The raw samples of the tag shown, over the window shown (the zoom)."""
        if self.tag is None:
            return None
        ws, we = self.window()
        return Spec("trend", ws, we, {"tag": self.tag.path})

    # -- data -------------------------------------------------------------------------------------
    def window(self) -> tuple[int, int]:
        lo, hi = self.range
        span = hi - lo
        return lo + round(span * self.zoom[0] / 100), lo + round(span * self.zoom[1] / 100)

    async def load(self, set_zoom: bool = True) -> None:
        if self.tag is None:
            return
        async with self._loading:
            ws, we = self.window()
            margin = (we - ws) // 2
            start, end = max(self.range[0], ws - margin), min(self.range[1], we + margin)
            tag = self.tag
            self.requests.append((tag.tag_id, start, end))
            ts, values = await asyncio.to_thread(data.history, self.h.services, self.who, tag.tag_id, start, end,
                                                 POINTS)
            self.chart.options.clear()
            self.chart.options.update(
                self._options([[float(t), v] for t, v in zip(ts, values, strict=True)], set_zoom))
            if not len(ts):  # not bare axes: say why
                self.chart.options["title"] = {"text": NO_SAMPLES, "left": "center", "top": "middle",
                                               "textStyle": {"fontSize": 16, "fontWeight": "normal"}}
            self.chart.update()
            span = f"{local_time(ws, self.tz, True)} to {local_time(we, self.tz, True)}"
            count = f"{len(ts)} points" if len(ts) else NO_SAMPLES.lower()
            self.caption.set_text(f"{tag.label or tag.name}: {span}, {count}. {zone_note(self.tz)}")
            self.caption.props(f'data-start-us="{ws}" data-end-us="{we}" data-points="{len(ts)}"')

    def open_at(self, tag: str | None, start_us: int | None, end_us: int | None) -> None:
        """Open on ``tag`` over ``start_us``..``end_us`` (a link from an alarm); what does not fit (an unknown
        tag, a reversed or empty range) is left as it was. A range given stays put (it does not follow now)."""
        if tag in self.tags:
            self.tag = self.tags[tag]
        end_us = now_us() if end_us is None and start_us is not None else end_us
        if start_us is not None and end_us is not None and 0 <= start_us < end_us:
            self.range = (start_us, end_us)
            self.zoom = (0.0, 100.0)
            self.following = False

    async def set_tag(self, path: str) -> None:
        self.tag = self.tags[path]
        await self.load()

    async def set_span(self, span_s: int) -> None:
        self.span_s = int(span_s)
        self.following = True
        end = now_us()
        self.range = (end - self.span_s * 1_000_000, end)
        self.zoom = (0.0, 100.0)
        await self.load()

    async def zoom_by(self, factor: float) -> None:
        lo, hi = self.zoom
        mid, half = (lo + hi) / 2, (hi - lo) * factor / 2
        self.zoom = (max(0.0, mid - half), min(100.0, mid + half))
        await self.load()

    async def _on_zoom(self, e: Any) -> None:
        args = e.args if isinstance(e.args, dict) else {}
        src = args["batch"][0] if args.get("batch") else args
        if "start" not in src or "end" not in src:
            return
        zoom = (float(src["start"]), float(src["end"]))
        if zoom != self.zoom:
            self.zoom = zoom
            await self.load()

    async def _follow(self) -> None:
        """Keep the trend live while the whole range is shown (not zoomed in)."""
        if self.following and self.zoom == (0.0, 100.0) and not self._loading.locked():
            end = now_us()
            self.range = (end - self.span_s * 1_000_000, end)
            await self.load(set_zoom=False)


def _tooltip_js(tz: str, unit: str, decimals: int | None) -> str:
    """The tooltip: the time in the site's zone, then each pen's value rounded as the pages show it
    (``plantlink.display.number_text``: the tag's decimals, else by magnitude) with its unit."""
    dec = "null" if decimals is None else str(int(decimals))
    rounded = (f"(v) => v === null ? '—' : ({dec} !== null ? v.toFixed({dec}) : Math.abs(v) >= 100 ? v.toFixed(1)"
               " : Math.abs(v) >= 1 ? v.toFixed(2) : Number(v.toPrecision(3)).toString())")
    return ("(ps) => { const f = " + axis_time_js(tz, True) + "; const r = " + rounded + ";"
            " const head = ps.length ? f(ps[0].value[0]) : '';"
            " return head + ps.map(p => '<br/>' + p.marker + r(p.value[1]) + "
            + json.dumps(f" {unit}" if unit else "") + ").join(''); }")
