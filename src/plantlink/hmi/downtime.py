"""A machine's downtime events, where an operator gives (or changes) the reason of a stop from the line's
reason tree. The reason is recorded by the downtime engine (checked against the tree) with the user's name."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.hmi import data, theme
from plantlink.hmi.data import MachineView
from plantlink.hmi.export import Spec, export_menu
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import Hmi, duration, local_time
from plantlink.identity import Principal
from plantlink.samples import now_us
from plantlink.services.downtime import DowntimeEvent

log = logging.getLogger("plantlink.hmi.downtime")
REFRESH_S = 10.0
#: Without any event listed, an export covers this far back.
EMPTY_SPAN_US = 8 * 3600 * 1_000_000


class DowntimeList:
    def __init__(self, h: Hmi, machine: MachineView, principal: Principal, tz: str,
                 span: Callable[[], tuple[int, int]] | None = None):
        """``span``: the range of the events shown (the page's range picker), asked at each refresh; without it
        the latest events."""
        self.h, self.machine, self.principal, self.tz, self.span = h, machine, principal, tz, span
        self.can_assign = principal.can(machine.site, "operator")
        self.tree = data.reason_tree(h.services, principal, machine.line)
        self.box: ui.column | None = None
        #: The range the list shows: from the oldest event listed to the last refresh.
        self.shown: tuple[int, int] | None = None

    def build(self) -> None:
        with ui.row().classes("items-baseline gap-3"):
            ui.label("Downtime events").classes("text-lg font-semibold")
            if not self.can_assign:
                ui.label("(operator rights are needed to give reasons)").classes("pl-muted text-sm")
            export_menu(self.h, self.principal, "downtime", self.export_spec, "events-export")
        self.box = ui.column().classes("w-full gap-1").props('data-testid="events"')
        live_timer(REFRESH_S, self.render)

    async def render(self) -> None:
        start, end = self.span() if self.span is not None else (None, None)
        events = await asyncio.to_thread(data.events, self.h.services, self.principal, self.machine.path,
                                         start_us=start, end_us=end)
        assert self.box is not None
        end = now_us()
        self.shown = (min((ev.start_us for ev in events), default=end - EMPTY_SPAN_US), end)
        self.box.clear()
        with self.box:
            if not events:
                ui.label("No stops recorded." if self.span is None else "No stops in this range.").classes("pl-muted")
            for ev in events:
                self._row(ev)

    def export_spec(self) -> Spec | None:
        """The machine's events over the range the list shows."""
        if self.shown is None:
            return None
        return Spec("downtime", *self.shown, {"machine": self.machine.path})

    def _row(self, ev: DowntimeEvent) -> None:
        look = theme.state_look(ev.state)
        with ui.row().classes("items-center gap-3 w-full border-b border-gray-300 py-1 flex-wrap").props(
                f'data-event="{ev.id}"'):
            ui.label(local_time(ev.start_us, self.tz, True)).classes("w-44")
            ui.label(duration(ev.duration_s) if ev.end_us is not None else "ongoing").classes("w-28")
            ui.label(look.label + (" · micro" if ev.micro else "")).classes("pl-badge").style(
                f"background: {look.background}; color: {look.text}")
            reason = f"{ev.reason_group}: {ev.reason}" if ev.reason else "— no reason —"
            ui.label(reason).classes("grow font-semibold" if ev.reason else "grow pl-muted").props(
                f'data-testid="reason-{ev.id}"')
            if ev.reason_by:
                ui.label(f"by {ev.reason_by}").classes("pl-muted text-sm")
            if self.can_assign and self.tree and ev.state != "unknown":
                ui.button("Change reason" if ev.reason else "Give reason", on_click=lambda e=ev: self._ask(e)
                          ).props(f'outline no-caps data-testid="assign-{ev.id}"').classes("pl-touch")

    def _ask(self, ev: DowntimeEvent) -> None:
        with ui.dialog() as dialog, ui.card().classes("min-w-[320px] max-w-[720px]"):
            ui.label(f"Reason for the stop at {local_time(ev.start_us, self.tz, True)}"
                     f" ({duration(ev.duration_s) if ev.duration_s is not None else 'ongoing'})").classes("text-lg")
            for group, reasons in self.tree.items():
                ui.label(group).classes("font-semibold mt-2")
                with ui.row().classes("gap-2 flex-wrap"):
                    for r in reasons:
                        ui.button(r, on_click=lambda g=group, r=r: self._assign(dialog, ev, g, r)).props(
                            f'no-caps unelevated color=blue-grey-7 data-reason="{r}"').classes("pl-touch")
            with ui.row().classes("w-full justify-end mt-2"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes("pl-touch")
        dialog.open()

    async def _assign(self, dialog: ui.dialog, ev: DowntimeEvent, group: str, reason: str) -> None:
        if not self.can_assign:  # re-checked at the moment of the write
            ui.notify("operator rights are needed to give reasons", type="negative")
            return
        try:
            await asyncio.to_thread(data.assign_reason, self.h.services, self.principal, ev.id, group,
                                    reason)
        except PlantlinkError as exc:
            ui.notify(str(exc), type="negative", multi_line=True)
            return
        log.info("%s gave reason %s/%s to downtime event %d of %s", self.principal.name, group, reason, ev.id,
                 ev.machine)
        dialog.close()
        ui.notify(f"Reason saved: {reason}", type="positive")
        await self.render()
