"""Machine page: the state (live), every tag's live value with unit and quality, a trend that zooms into the
history, the state timeline and the downtime events with their reasons, all over the range of the picker
(``hmi.rangepick``; the last 8 h by default)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.hmi import data, theme
from plantlink.hmi.analytics_line import analytics_line
from plantlink.hmi.control import SetpointPanel
from plantlink.hmi.data import MachineView, TagView
from plantlink.hmi.downtime import DowntimeList
from plantlink.hmi.guard import live_timer
from plantlink.hmi.rangepick import RangePicker, address, open_range
from plantlink.hmi.timerange import Limits
from plantlink.hmi.trend import Trend
from plantlink.hmi.widgets import (
    LIVE_PERIOD_S,
    Hmi,
    duration,
    frame,
    local_time,
    open_object,
)
from plantlink.identity import Principal
from plantlink.samples import now_us

TIMELINE_REFRESH_S = 30.0


#: The machine page's ranges: at most 7 days (the state timeline draws every state change).
LIMITS = Limits(max_days=7, default="8h", compare=False)


async def machine_page(request: Request, path: str) -> Response | None:
    opened = open_object(request, lambda h: h.view.machine(path))
    if isinstance(opened, Response):
        return opened
    principal, h, m = opened
    h.hub.ensure_started()
    tz = h.view.site(m.site).timezone
    ln = h.view.line(m.line)
    q = request.query_params
    picked, refused = open_range(h, m.site, tz, q, LIMITS)
    follow = picked.preset is not None and picked.end_us >= now_us() - FOLLOW_SLACK_US  # a range ending now
    ui.page_title(f"{m.name} · plantlink")
    frame(principal, [(h.services.plant.enterprise, h.page("")), (f"{ln.area} / {ln.name}", h.page("line", ln.path)),
                      (m.name, None)])
    live = LiveValues(h, m, tz)
    live.build()
    SetpointPanel(h, m, principal).build()
    keep = {"tag": q["tag"]} if q.get("tag") else {}
    RangePicker(tz, picked, LIMITS, refused, lambda x: address(h.page("machine", m.path), {**keep, **x})).build()
    with ui.element("div").classes("pl-panel w-full"):
        ui.label("Trend").classes("text-lg font-semibold")
        trend = Trend(h, m, tz, principal)
        trend.open_at(q.get("tag"), picked.start_us, picked.end_us, follow)
        trend.build()
    spc_links(h, m)
    analytics_line(h, m.path, tz)
    span = Span(picked.start_us, picked.end_us, follow)
    timeline = Timeline(h, m, tz, principal, span)
    with ui.element("div").classes("pl-panel w-full"):
        timeline.build()
    downtime = DowntimeList(h, m, principal, tz, span.now)
    with ui.element("div").classes("pl-panel w-full"):
        downtime.build()
    live.on_state_change = lambda: asyncio.gather(timeline.render(), downtime.render())
    live_timer(LIVE_PERIOD_S, live.update)
    await asyncio.gather(trend.load(), trend.refresh_views(), timeline.render(), downtime.render())
    return None


FOLLOW_SLACK_US = 60 * 1_000_000


@dataclass(frozen=True)
class Span:
    """The page's range for the timeline and the downtime events: fixed, or (``follow``) of the same length
    ending now at each refresh."""

    start_us: int
    end_us: int
    follow: bool

    def now(self) -> tuple[int, int]:
        if not self.follow:
            return self.start_us, self.end_us
        end = now_us()
        return end - (self.end_us - self.start_us), end


class LiveValues:
    """The state banner and one card per tag; redraws only the tags the hub saw change."""

    def __init__(self, h: Hmi, m: MachineView, tz: str):
        self.h, self.m, self.tz = h, m, tz
        self.ids = np.array([t.tag_id for t in m.tags], dtype=np.int64)
        self.by_id: dict[int, TagView] = {t.tag_id: t for t in m.tags}
        self.cells: dict[int, tuple[ui.label, ui.label]] = {}
        self.seen = -1
        self.state_seen = -1
        self.on_state_change: object = None

    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full") as self.banner, ui.row().classes("items-baseline gap-4"):
            self.state = ui.label("").classes("pl-big").props('data-testid="machine-state"')
            self.since = ui.label("").classes("pl-muted")
            ui.label(self.m.description).classes("pl-muted")
        with ui.element("div").classes("grid grid-cols-2 sm:grid-cols-3 lg:grid-cols-5 gap-2 w-full"):
            for t in self.m.tags:
                with ui.element("div").classes("pl-panel").props(f'data-tag="{t.path}"'):
                    ui.label((t.label or t.name) + (" ✎" if t.writable else "")).classes("pl-muted text-sm").props(
                        f'title="{t.path}"')
                    with ui.row().classes("items-center gap-2"):
                        value = ui.label("—").classes("pl-value").props(f'data-testid="value-{t.name}"')
                        badge = ui.label("").classes("pl-badge")
                self.cells[t.tag_id] = (value, badge)
        self.update(first=True)

    def update(self, first: bool = False) -> None:
        hub = self.h.hub
        if hub.tick == self.seen:
            return
        since, self.seen = self.seen, hub.tick
        ids = self.ids if first else hub.changed_tags(self.ids, since)
        for tid in ids.tolist():
            self._show(tid)
        t = hub.state_tick.get(self.m.path, 0)
        if t != self.state_seen:
            self.state_seen = t
            self._show_state(first)

    def _show(self, tid: int) -> None:
        tag, s = self.by_id[tid], self.h.hub.sample(tid)
        value, badge = self.cells[tid]
        value.set_text(tag.text(s.value, s.reason))
        look = theme.QUALITY_LOOK[theme.quality_name(s.quality)]
        badge.set_text(look.label)
        badge.style(replace=f"background: {look.background}; color: {look.text}")
        badge.props(f'data-quality="{theme.quality_name(s.quality)}"')

    def _show_state(self, first: bool) -> None:
        st = self.h.hub.states.get(self.m.path)
        state = st[0] if st else None
        look = theme.state_look(state)
        self.banner.style(replace=f"background: {look.background}; color: {look.text}")
        self.banner.props(f'data-state="{state or theme.NO_STATE}"')
        self.state.set_text(look.label if self.m.has_states else "No state rules")
        self.since.set_text(f"since {local_time(st[1], self.tz, True)}" if st else "")
        if not first and callable(self.on_state_change):
            asyncio.get_running_loop().create_task(self.on_state_change())


class Timeline:
    """The machine's states over the page's range as a bar of coloured segments (grey = running)."""

    def __init__(self, h: Hmi, m: MachineView, tz: str, who: Principal, span: Span):
        self.h, self.m, self.tz, self.who, self.span = h, m, tz, who, span

    def build(self) -> None:
        ui.label("States").classes("text-lg font-semibold")
        self.bar = ui.element("div").classes("w-full flex h-10 border border-gray-400 rounded overflow-hidden"
                                             ).props('data-testid="timeline"')
        with ui.row().classes("w-full justify-between pl-muted text-sm"):
            self.left = ui.label("")
            self.right = ui.label("now")
        with ui.row().classes("gap-2 flex-wrap mt-1"):
            for name, look in theme.STATE_LOOK.items():
                ui.label(look.label).classes("pl-badge").style(
                    f"background: {look.background}; color: {look.text}; border: 1px solid #9e9e9e").props(
                    f'data-legend="{name}"')
        live_timer(TIMELINE_REFRESH_S, self.render)

    async def render(self) -> None:
        start, end = self.span.now()
        ivs = await asyncio.to_thread(data.timeline, self.h.services, self.who, self.m.path, start, end)
        self.left.set_text(local_time(start, self.tz, True))
        self.right.set_text("now" if self.span.follow else local_time(end, self.tz, True))
        self.bar.props(f'data-start-us="{start}" data-end-us="{end}"')
        self.bar.clear()
        span = end - start
        cursor = start
        with self.bar:
            for iv in ivs:
                iv_end = iv.end_us if iv.end_us is not None else end
                if iv.start_us > cursor:  # no record: nothing known
                    self._segment(None, cursor, iv.start_us, span)
                self._segment(iv.state, max(iv.start_us, cursor), min(iv_end, end), span)
                cursor = max(cursor, iv_end)
            if cursor < end:
                self._segment(None, cursor, end, span)

    def _segment(self, state: str | None, lo: int, hi: int, span: int) -> None:
        if hi <= lo:
            return
        look = theme.state_look(state)
        when = f"{local_time(lo, self.tz)} to {local_time(hi, self.tz)} ({duration((hi - lo) / 1e6)})"
        ui.element("div").style(f"width: {100 * (hi - lo) / span:.4f}%; background: {look.background}").props(
            f'data-state="{state or theme.NO_STATE}" title="{look.label}: {when}"')


def spc_links(h: Hmi, m: MachineView) -> None:
    """Links to the SPC page of each of the machine's tags with SPC settings (none: nothing shown)."""
    tags = [t for t in m.tags if (i := h.services.plant.tags.get(t.path)) is not None and i.tag.spc is not None]
    if not tags:
        return
    with ui.row().classes("items-center gap-3").props('data-testid="spc-links"'):
        ui.label("SPC:").classes("pl-muted")
        for t in tags:
            ui.link(t.label or t.name, h.page("spc", t.path))
