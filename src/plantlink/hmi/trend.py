"""A trend of several tags' history (pens) that zooms and pans (ECharts dataZoom). On every zoom or pan the
visible window (with half a window of margin each side) is fetched again from the historian, each pen
downsampled (MinMaxLTTB) to about ``POINTS`` points: a zoom shows the detail of the new range, not a stretched
coarse picture. The options (axes per unit, the cursor readout, the marks) are ``trendchart``'s."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui

from plantlink.errors import Unavailable
from plantlink.hmi import data
from plantlink.hmi.data import MachineView, TagView
from plantlink.hmi.export import Spec, export_menu
from plantlink.hmi.guard import live_timer
from plantlink.hmi.trendchart import MAX_PENS, Points, default_pens, options, pen_label
from plantlink.hmi.trendnotes import SavedViews, TrendNotes
from plantlink.hmi.widgets import Hmi, local_time, zone_note
from plantlink.identity import Principal
from plantlink.samples import now_us
from plantlink.services.annotations import Annotation
from plantlink.services.trends import Marks

POINTS = 800
SPANS_S: dict[int, str] = {900: "15 min", 3600: "1 h", 8 * 3600: "8 h", 24 * 3600: "24 h", 7 * 86400: "7 d"}
FOLLOW_S = 5.0  # while showing the whole range, move it on to "now" this often


NO_SAMPLES = "No samples in this range"

class Trend:
    def __init__(self, h: Hmi, machine: MachineView, tz: str, who: Principal):
        self.h = h
        self.who = who
        self.tz = tz
        self.machine = machine
        self.tags = {t.path: t for t in machine.tags if t.type in ("float", "int")}
        #: the pens drawn, in order (the first one names the caption)
        self.pens: list[TagView] = default_pens(machine)
        self.span_s = 3600
        end = now_us()
        self.range = (end - self.span_s * 1_000_000, end)
        self.zoom = (0.0, 100.0)  # the visible window, in percent of the range
        self.following = True  # the whole range moves on to "now" (not for a range opened from a link)
        #: Every history request (tag id, start_us, end_us): what was fetched for which zoom.
        self.requests: list[tuple[int, int, int]] = []
        self.marks: Marks | None = None
        self.notes: list[Annotation] = []
        self.notes_ui: TrendNotes | None = None
        self.saved: SavedViews | None = None
        self._loading = asyncio.Lock()

    @property
    def tag(self) -> TagView | None:
        return self.pens[0] if self.pens else None

    # -- building ---------------------------------------------------------------------------------
    def build(self) -> None:
        if not self.tags:
            ui.label("This machine has no numeric tag.").classes("pl-muted")
            return
        with ui.row().classes("items-center gap-3 w-full"):
            self.picker = ui.select({p: pen_label(t) for p, t in self.tags.items()}, multiple=True,
                                    value=[t.path for t in self.pens], label="Pens",
                                    on_change=lambda e: self.set_pens(e.value)
                                    ).props('outlined dense use-chips data-testid="trend-tag"').classes(
                "min-w-[320px]")
            self.toggle = ui.toggle(SPANS_S, value=self.span_s if self.following else None,
                                    on_change=lambda e: self.set_span(e.value)
                                    ).props('no-caps data-testid="trend-span"').classes("pl-touch")
            ui.button(icon="zoom_in", on_click=lambda: self.zoom_by(0.5)).props(
                'flat data-testid="zoom-in" aria-label="Zoom in"').classes("pl-touch")
            ui.button(icon="zoom_out", on_click=lambda: self.zoom_by(2.0)).props(
                'flat data-testid="zoom-out" aria-label="Zoom out"').classes("pl-touch")
            export_menu(self.h, self.who, "trend", self.export_spec, "trend-export")
        self.chart = ui.echart(self._options([])).classes("w-full h-96").props('data-testid="trend-chart"')
        self.chart.on("chart:datazoom", self._on_zoom, throttle=0.3, leading_events=False)
        self.caption = ui.label("").classes("pl-muted text-sm").props('data-testid="trend-range"')
        self.saved = SavedViews(self)
        self.saved.build()
        self.notes_ui = TrendNotes(self)
        self.notes_ui.build()
        live_timer(FOLLOW_S, self._follow)

    def _options(self, series: list[Points], set_zoom: bool = True) -> dict[str, Any]:
        """Without ``set_zoom`` the browser keeps its own zoom (a refresh must not undo a zoom under way)."""
        series = series or [[] for _ in self.pens]
        return options(self.pens, series, self.range, self.tz, self.zoom if set_zoom else None, self.marks,
                       self.notes, self.chart.id if hasattr(self, "chart") else None)

    def export_spec(self) -> Spec | None:
        """The raw samples of the pens shown, over the window shown (the zoom)."""
        if not self.pens:
            return None
        ws, we = self.window()
        return Spec("trend", ws, we, {"tag": ",".join(p.path for p in self.pens)})

    # -- data -------------------------------------------------------------------------------------
    def window(self) -> tuple[int, int]:
        lo, hi = self.range
        span = hi - lo
        return lo + round(span * self.zoom[0] / 100), lo + round(span * self.zoom[1] / 100)

    async def load(self, set_zoom: bool = True) -> None:
        if not self.pens:
            return
        async with self._loading:
            ws, we = self.window()
            margin = (we - ws) // 2
            start, end = max(self.range[0], ws - margin), min(self.range[1], we + margin)
            pens = list(self.pens)
            for p in pens:
                self.requests.append((p.tag_id, start, end))
            got, self.marks, self.notes = await asyncio.to_thread(self._fetch, pens, start, end)
            series = [_held([[float(t), v] for t, v in zip(ts, values, strict=True)], min(end, now_us()))
                      for ts, values in got]
            n = sum(len(ts) for ts, _ in got)
            self.chart.options.clear()
            self.chart.options.update(self._options(series, set_zoom))
            if not n:  # not bare axes: say why
                self.chart.options["title"] = {"text": NO_SAMPLES, "left": "center", "top": "middle",
                                               "textStyle": {"fontSize": 16, "fontWeight": "normal"}}
            self.chart.update()
            span = f"{local_time(ws, self.tz, True)} to {local_time(we, self.tz, True)}"
            count = f"{n} points" if n else NO_SAMPLES.lower()
            names = ", ".join(p.label or p.name for p in pens)
            self.caption.set_text(f"{names}: {span}, {count}. {zone_note(self.tz)}")
            self.caption.props(f'data-start-us="{ws}" data-end-us="{we}" data-points="{n}" '
                               f'data-pens="{" ".join(p.path for p in pens)}"')
            if self.notes_ui is not None:
                self.notes_ui.render(self.notes)

    def _fetch(self, pens: list[TagView], start: int, end: int
               ) -> tuple[list[tuple[list[int], list[float | None]]], Marks | None, list[Annotation]]:
        """Each pen downsampled by the history service (columns, no per-sample objects), and the marks."""
        got = [data.history(self.h.services, self.who, p.tag_id, start, end, POINTS) for p in pens]
        try:
            marks: Marks | None = data.trend_marks(self.h.services, self.who, self.machine.path, self.range[0],
                                                   self.range[1])
        except Unavailable:  # no store: a trend without marks
            marks = None
        try:
            notes = data.trend_notes(self.h.services, self.who, self.machine.path, self.range[0], self.range[1])
        except Unavailable:
            notes = []
        return got, marks, notes

    def open_at(self, tag: str | None, start_us: int | None, end_us: int | None, follow: bool = False) -> None:
        """Open on ``tag`` over ``start_us``..``end_us`` (a link from an alarm, the page's range picker); what
        does not fit (an unknown tag, a reversed or empty range) is left as it was. A range given stays put
        unless ``follow`` (a range ending now, as "last 8 h": it moves on with time, keeping its length)."""
        if tag in self.tags:
            self.pens = default_pens(self.machine, self.tags[tag])
        end_us = now_us() if end_us is None and start_us is not None else end_us
        if start_us is not None and end_us is not None and 0 <= start_us < end_us:
            self.range = (start_us, end_us)
            self.zoom = (0.0, 100.0)
            self.following = follow
            if follow:
                self.span_s = max(1, (end_us - start_us) // 1_000_000)

    async def set_pens(self, paths: list[str] | str | None) -> None:
        """The pens chosen in the picker (unknown paths are left out; at most ``MAX_PENS``)."""
        chosen = [paths] if isinstance(paths, str) else list(paths or [])
        pens = [self.tags[p] for p in chosen if p in self.tags][:MAX_PENS]
        if pens == self.pens:
            return  # already shown (a saved view set them)
        self.pens = pens
        await self.load()

    async def set_range(self, start_us: int, end_us: int) -> None:
        """Show ``start_us``..``end_us`` (fixed: it does not follow now), e.g. from a range picker."""
        if 0 <= start_us < end_us:
            self.range, self.zoom, self.following = (start_us, end_us), (0.0, 100.0), False
            self.toggle.set_value(None)
            await self.load()

    async def show_view(self, pens: list[str], span_s: int | None, start_us: int | None, end_us: int | None
                        ) -> None:
        """Open a saved view: its pens (this machine's tags) and its range, relative (up to now) or fixed."""
        self.pens = [self.tags[p] for p in pens if p in self.tags][:MAX_PENS] or self.pens
        if span_s is not None:
            end = now_us()
            self.span_s, self.following = span_s, True
            self.range, self.zoom = (end - span_s * 1_000_000, end), (0.0, 100.0)
        elif start_us is not None and end_us is not None:
            self.range, self.zoom, self.following = (start_us, end_us), (0.0, 100.0), False
        self.picker.set_value([p.path for p in self.pens])
        self.toggle.set_value(self.span_s if self.following and self.span_s in SPANS_S else None)
        await self.load()

    async def refresh_views(self) -> None:
        """The saved views' list (after the page is built)."""
        if self.saved is not None:
            await self.saved.refresh()

    def span_text(self) -> str:
        return SPANS_S.get(self.span_s, f"{self.span_s} s")

    async def set_span(self, span_s: int | None) -> None:
        if span_s is None or (int(span_s) == self.span_s and self.following):
            return  # cleared, or already shown (a saved view set it)
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
        # within the range whatever the chart sends (a pan past an end, a reversed pair)
        zoom = (min(100.0, max(0.0, float(src["start"]))), min(100.0, max(0.0, float(src["end"]))))
        if zoom != self.zoom and zoom[0] < zoom[1]:
            self.zoom = zoom
            await self.load()

    async def _follow(self) -> None:
        """Keep the trend live while the whole range is shown (not zoomed in)."""
        if self.following and self.zoom == (0.0, 100.0) and not self._loading.locked():
            end = now_us()
            self.range = (end - self.span_s * 1_000_000, end)
            await self.load(set_zoom=False)



def _held(points: Points, until_us: int) -> Points:
    """The last value held up to ``until_us`` (the recorder writes on change: a steady setpoint has few
    samples); the extra point carries no new value."""
    if points and points[-1][1] is not None and points[-1][0] is not None and points[-1][0] < until_us // 1000:
        return [*points, [float(until_us // 1000), points[-1][1]]]
    return points
