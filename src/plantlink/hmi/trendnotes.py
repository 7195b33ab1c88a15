"""Under a machine's trend: the notes people add on it (a time or a span; listed and marked on the chart for
everyone who may view the machine) and saved trend views (pens and range under a name, opened again from a
list). Both go through the service layer (``services.annotations``, ``services.trendviews``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.hmi import data
from plantlink.hmi.widgets import local_time
from plantlink.samples import now_us
from plantlink.services.annotations import Annotation
from plantlink.services.trendviews import TrendView

if TYPE_CHECKING:
    from plantlink.hmi.trend import Trend

TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


def parse_site_time(text: str, tz: str, what: str) -> int:
    """``2026-11-27 07:30`` (or with seconds) read in the site's zone, as epoch microseconds."""
    for fmt in TIME_FORMATS:
        try:
            return int(datetime.strptime(text.strip(), fmt).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1_000_000)
        except ValueError:
            continue
    raise ValueError(f"{what}: write the time as YYYY-MM-DD HH:MM (site time, {tz}), not {text.strip()!r}")


def site_time_text(ts_us: int, tz: str) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, ZoneInfo(tz)).strftime(TIME_FORMATS[0])


class TrendNotes:
    """The notes list under the trend, and the dialog that adds one (operators and above at the site)."""

    def __init__(self, trend: Trend):
        self.t = trend
        self.site = trend.machine.site
        self.picked_us: int | None = None  # a time clicked on the chart: where a new note goes

    @property
    def can_add(self) -> bool:
        return self.t.who.can(self.site, "operator")

    def build(self) -> None:
        with ui.row().classes("items-center gap-3 w-full mt-2"):
            ui.label("Notes").classes("font-semibold")
            if self.can_add:
                ui.button("Add note", icon="edit_note", on_click=self.open_dialog).props(
                    'no-caps outline data-testid="note-add"').classes("pl-touch")
        self.list = ui.element("div").classes("w-full flex flex-col gap-1").props('data-testid="trend-notes"')
        self.t.chart.on("chart:click", self._picked)

    def _picked(self, e: Any) -> None:
        value = e.args.get("value") if isinstance(e.args, dict) else None
        if isinstance(value, list) and value and isinstance(value[0], int | float):
            self.picked_us = int(value[0]) * 1000

    def render(self, notes: list[Annotation]) -> None:
        self.list.clear()
        with self.list:
            if not notes:
                ui.label("No notes in this range.").classes("pl-muted text-sm")
            for n in notes:
                when = local_time(n.start_us, self.t.tz, True)
                if n.end_us is not None:
                    when += f" to {local_time(n.end_us, self.t.tz, True)}"
                with ui.row().classes("items-center gap-2 w-full").props(f'data-note="{n.id}"'):
                    ui.label(when).classes("pl-muted text-sm")
                    ui.label(n.author).classes("text-sm font-semibold")
                    ui.label(n.text).classes("text-sm").props('data-testid="note-text-shown"')
                    if self._may_delete(n):
                        ui.button(icon="delete", on_click=lambda n=n: self.delete(n)).props(
                            'flat dense data-testid="note-delete" aria-label="Delete note"')

    def _may_delete(self, n: Annotation) -> bool:
        who = self.t.who
        return (n.author == who.name and who.can(n.site, "operator")) or who.can(n.site, "admin")

    def open_dialog(self) -> None:
        at = self.picked_us if self.picked_us is not None else now_us()
        with ui.dialog() as dialog, ui.card().classes("min-w-[360px]"):
            ui.label(f"Note on {self.t.machine.name}'s trend").classes("text-lg")
            text = ui.textarea("Note", validation={"At most 500 characters": lambda v: len(v or "") <= 500}
                               ).props('outlined data-testid="note-text" maxlength=500').classes("w-full")
            start = ui.input(f"At ({self.t.tz})", value=site_time_text(at, self.t.tz)).props(
                'outlined dense data-testid="note-at"').classes("w-full")
            end = ui.input("Until (optional, for a span)").props('outlined dense data-testid="note-until"'
                                                                ).classes("w-full")
            error = ui.label("").classes("text-sm").style("color: #b00020").props('data-testid="note-error"')
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes("pl-touch")
                ui.button("Save", on_click=lambda: self._save(dialog, text.value, start.value, end.value, error)
                          ).props('no-caps unelevated color=blue-grey-7 data-testid="note-save"').classes("pl-touch")
        dialog.open()

    async def _save(self, dialog: ui.dialog, text: str, start: str, end: str, error: ui.label) -> None:
        try:
            s = parse_site_time(start or "", self.t.tz, "At")
            e = parse_site_time(end, self.t.tz, "Until") if (end or "").strip() else None
            await asyncio.to_thread(data.add_annotation, self.t.h.services, self.t.who, self.t.machine.path,
                                    text or "", s, e)
        except (ValueError, PlantlinkError) as exc:
            error.set_text(str(exc))
            return
        dialog.close()
        await self.t.load(set_zoom=False)

    async def delete(self, n: Annotation) -> None:
        try:
            await asyncio.to_thread(data.delete_annotation, self.t.h.services, self.t.who, n.id)
        except PlantlinkError as exc:
            ui.notify(str(exc), type="negative")
            return
        await self.t.load(set_zoom=False)


class SavedViews:
    """A list of the user's saved views of this machine (and those shared at the site), and "Save view"."""

    def __init__(self, trend: Trend):
        self.t = trend
        self.views: dict[int, TrendView] = {}

    def build(self) -> None:
        with ui.row().classes("items-center gap-3"):
            self.select = ui.select({}, label="Saved views", on_change=lambda e: self.open(e.value)).props(
                'outlined dense clearable data-testid="trend-views"').classes("min-w-[220px]")
            ui.button("Save view", icon="bookmark_add", on_click=self.open_dialog).props(
                'no-caps outline data-testid="view-save"').classes("pl-touch")

    async def refresh(self) -> None:
        try:
            found = await asyncio.to_thread(data.trend_views, self.t.h.services, self.t.who, self.t.machine.path)
        except PlantlinkError:
            found = []
        self.views = {v.id: v for v in found}
        self.select.set_options({v.id: v.name + (" (shared)" if v.shared else "") for v in found})

    async def open(self, view_id: int | None) -> None:
        v = self.views.get(view_id) if view_id is not None else None
        if v is None:
            return
        await self.t.show_view(list(v.pens), v.span_s, v.start_us, v.end_us)

    def open_dialog(self) -> None:
        can_share = self.t.who.can(self.t.machine.site, "operator")
        with ui.dialog() as dialog, ui.card().classes("min-w-[320px]"):
            ui.label("Save this trend view").classes("text-lg")
            rel = "the last " + self.t.span_text() if self.t.following else "this fixed range"
            ui.label(f"{len(self.t.pens)} pens over {rel}").classes("pl-muted text-sm")
            name = ui.input("Name").props('outlined dense maxlength=100 data-testid="view-name"').classes("w-full")
            shared = ui.checkbox("Share with the site").props('data-testid="view-shared"') if can_share else None
            error = ui.label("").classes("text-sm").style("color: #b00020").props('data-testid="view-error"')
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes("pl-touch")
                ui.button("Save", on_click=lambda: self._save(dialog, name.value, bool(shared and shared.value),
                                                              error)
                          ).props('no-caps unelevated color=blue-grey-7 data-testid="view-save-confirm"'
                                  ).classes("pl-touch")
        dialog.open()

    async def _save(self, dialog: ui.dialog, name: str, shared: bool, error: ui.label) -> None:
        t = self.t
        span, start, end = (t.span_s, None, None) if t.following else (None, t.range[0], t.range[1])
        try:
            await asyncio.to_thread(data.save_trend_view, t.h.services, t.who, t.machine.path, name or "",
                                    [p.path for p in t.pens], span, start, end, shared)
        except PlantlinkError as exc:
            error.set_text(str(exc))
            return
        dialog.close()
        await self.refresh()
