"""The alarm summary (ISA-18.2): the annunciated alarms of the user's sites, filtered by priority, site and
state, sorted by priority then newest first, each with its tag's value beside its limit and links to its
machine and to a trend around its activation; acknowledge one or all shown with a comment, shelve with a
duration and a reason, take out of service and return with a comment (operator rights at the alarm's site);
and the journal of the latest transitions."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.display import unit_symbol
from plantlink.hmi import data, theme
from plantlink.hmi.alarmperf import FailedNotifications, PerformancePanel
from plantlink.hmi.alarmsound import AlarmSound
from plantlink.hmi.data import TagView
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import Hmi, local_time, open_page
from plantlink.identity import Principal
from plantlink.services.alarms import ANNUNCIATED, STATES, UNACKNOWLEDGED, AlarmActionError, AlarmView

PERIOD_S = 0.5
JOURNAL_S = 2.0
SHELVE_MINUTES: dict[int, str] = {15: "15 min", 60: "1 h", 240: "4 h", 480: "8 h", 1440: "24 h"}
ANNUNCIATED_KEY = "annunciated"
TREND_BEFORE_MIN = 10  # the trend from an alarm starts this long before the activation


async def alarms_page(request: Request) -> Response | None:
    opened = open_page(request, "Alarms")
    if isinstance(opened, Response):
        return opened
    h, principal = opened
    h.hub.ensure_started()
    summary = Summary(h, principal)
    summary.build()
    journal = Journal(h, principal)
    with ui.element("div").classes("pl-panel w-full"):
        journal.build()
    perf = PerformancePanel(h, principal)
    with ui.element("div").classes("pl-panel w-full"):
        perf.build()
    failed = FailedNotifications(h, principal)
    with ui.element("div").classes("pl-panel w-full"):
        failed.build()
    summary.on_action = journal.render
    await journal.render()
    await perf.render()
    await failed.render()
    return None


class Summary:
    def __init__(self, h: Hmi, principal: Principal):
        self.h, self.principal = h, principal
        self.sites = data.alarm_sites(h.services, principal)
        self.operator_sites = set(data.alarm_sites(h.services, principal, "operator"))
        self.priorities: list[str] = []
        self.site: str | None = None
        self.state = ANNUNCIATED_KEY
        self.shown: list[AlarmView] = []
        self.signature: tuple[Any, ...] = ()
        self.on_action: Any = None
        self.sound = AlarmSound()
        self.values: dict[str, tuple[TagView, ui.label]] = {}  # alarm key -> its tag, the label of its value
        self.rows: dict[str, tuple[AlarmView, ui.row]] = {}  # alarm key -> the alarm its row shows, the row
        self.empty: ui.label | None = None

    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full"):
            with ui.row().classes("items-center gap-3 w-full flex-wrap"):
                ui.label("Alarm summary").classes("text-lg font-semibold")
                ui.select({p: theme.priority_look(p).label for p in theme.PRIORITY_LOOK}, multiple=True,
                          label="Priority", value=[], on_change=lambda e: self._filter(priorities=e.value)
                          ).props('outlined dense clearable data-testid="filter-priority"').classes("min-w-[200px]")
                ui.select({"": "All sites", **{s: s for s in self.sites}}, label="Site", value="",
                          on_change=lambda e: self._filter(site=e.value or None)
                          ).props('outlined dense data-testid="filter-site"').classes("min-w-[160px]")
                states = {ANNUNCIATED_KEY: "Annunciated", **{s: theme.ALARM_STATE_LABEL[s] for s in STATES
                                                            if s != "normal"}}
                ui.select(states, label="State", value=ANNUNCIATED_KEY, on_change=lambda e: self._filter(state=e.value)
                          ).props('outlined dense data-testid="filter-state"').classes("min-w-[220px]")
            with ui.row().classes("items-center gap-3 w-full flex-wrap"):
                self.comment = ui.input("Comment (acknowledge)").props(
                    'outlined dense data-testid="ack-comment" maxlength=2000').classes("min-w-[320px] grow")
                self.ack_all = ui.button("Acknowledge all shown", on_click=self._ack_shown).props(
                    'no-caps unelevated color=blue-grey-8 data-testid="ack-all"').classes("pl-touch")
                self.total = ui.label("").classes("pl-muted").props('data-testid="alarm-total"')
                self.sound.build()
            self.box = ui.column().classes("w-full gap-0").props('data-testid="alarm-list"')
            self.dialogs = ui.element("div")  # dialogs live here: a redraw of the list must not close them
        self.render(force=True)
        live_timer(PERIOD_S, self.render)

    def _filter(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self, k, v)
        self.render(force=True)

    def _current(self) -> list[AlarmView]:
        states = None if self.state == ANNUNCIATED_KEY else [self.state]
        return data.active_alarms(self.h.services, self.principal, sites=[self.site] if self.site else None,
                                  priorities=self.priorities or None, states=states)

    def render(self, force: bool = False) -> None:
        self.sound.look(data.active_alarms(self.h.services, self.principal))  # every annunciated one, unfiltered
        rows = self._current()
        sig = tuple((a.key, a.state, a.since_us, a.active) for a in rows)
        if sig == self.signature and not force:
            self._update_values()
            return
        self.signature, self.shown = sig, rows
        self.total.set_text(f"{len(rows)} alarm{'s' if len(rows) != 1 else ''} shown")
        can_ack = any(a.state in UNACKNOWLEDGED and a.site in self.operator_sites for a in rows)
        self.ack_all.set_visibility(bool(self.operator_sites))
        self.ack_all.set_enabled(can_ack)
        self._place(rows)

    def _place(self, rows: list[AlarmView]) -> None:
        """The rows updated in place, keyed by alarm: a row whose alarm did not change stays the same element
        (a click on it is never lost to a redraw); a changed one is drawn again where it belongs; gone ones go."""
        wanted = {a.key for a in rows}
        for key in [k for k in self.rows if k not in wanted]:
            self._drop(key)
        if rows and self.empty is not None:
            self.box.remove(self.empty)
            self.empty = None
        for i, a in enumerate(rows):
            kept = self.rows.get(a.key)
            if kept is not None and kept[0] != a:  # any field of the alarm changed: the row is drawn again
                self._drop(a.key)
                kept = None
            if kept is None:
                with self.box:
                    kept = (a, self._row(a))
                self.rows[a.key] = kept
            if self.box.default_slot.children.index(kept[1]) != i:
                kept[1].move(self.box, target_index=i)
        if not rows and self.empty is None:
            with self.box:
                self.empty = ui.label("No alarms.").classes("pl-muted py-2").props('data-testid="no-alarms"')

    def _drop(self, key: str) -> None:
        _, row = self.rows.pop(key)
        self.values.pop(key, None)
        self.box.remove(row)

    def _row(self, a: AlarmView) -> ui.row:
        look = theme.priority_look(a.priority)
        tz = self.h.view.site(a.site).timezone
        act = a.site in self.operator_sites
        with ui.row().classes("items-center gap-3 w-full border-b border-gray-300 py-1 flex-wrap").props(
                f'data-alarm="{a.key}" data-state="{a.state}" data-priority="{a.priority}"') as row:
            ui.label(look.label).classes("pl-badge w-20 text-center").style(
                f"background: {look.background}; color: {look.text}")
            # an alarm's time is when it became active; acknowledging or shelving it does not move it
            ui.label(local_time(a.activated_us if a.activated_us is not None else a.since_us, tz, True)).classes(
                "w-52").props('data-testid="alarm-time"')
            if a.machine:
                ui.link(a.machine.split("/", 3)[-1], self.h.page("machine", a.machine)).classes("w-56").props(
                    'data-testid="alarm-machine"')
            else:
                ui.label(a.site).classes("w-56")
            with ui.column().classes("grow gap-0"):
                ui.label(a.message or a.key).classes("font-semibold")
                ui.label(a.response).classes("pl-muted text-sm")
            self._value_and_limit(a)
            ui.label(theme.ALARM_STATE_LABEL.get(a.state, a.state)).classes(
                "w-52" + (" font-bold" if a.state in UNACKNOWLEDGED else "")).props('data-testid="alarm-state"')
            if act and a.state in UNACKNOWLEDGED:
                ui.button("Acknowledge", on_click=lambda k=a.key: self._ack([k])).props(
                    'outline no-caps data-testid="ack"').classes("pl-touch")
            if act and a.state in ANNUNCIATED:
                ui.button("Shelve", on_click=lambda al=a: self._ask_shelve(al)).props(
                    'outline no-caps data-testid="shelve"').classes("pl-touch")
            if act and a.state == "shelved":
                ui.label(f"until {local_time(a.shelved_until_us, tz, True)}: {a.shelve_reason}").classes("pl-muted")
                ui.button("Unshelve", on_click=lambda k=a.key: self._unshelve(k)).props(
                    'outline no-caps data-testid="unshelve"').classes("pl-touch")
            if act and a.state in ANNUNCIATED:
                ui.button("Out of service", on_click=lambda al=a: self._ask_service(al, True)).props(
                    'outline no-caps data-testid="oos"').classes("pl-touch")
            if act and a.state == "out_of_service":
                ui.button("Return to service", on_click=lambda al=a: self._ask_service(al, False)).props(
                    'outline no-caps data-testid="return-to-service"').classes("pl-touch")
        return row

    def _value_and_limit(self, a: AlarmView) -> None:
        """The tag's current value (live, with its unit) beside the alarm's limit, and a link to the trend of
        the tag from ``TREND_BEFORE_MIN`` before the activation to now, on the machine page."""
        tag = self.h.view.tags.get(a.tag)
        with ui.column().classes("w-48 gap-0"):
            value = ui.label(self._value(tag)).classes("font-semibold").props('data-testid="alarm-value"')
            if tag is not None:
                self.values[a.key] = (tag, value)
            limit = data.alarm_limit(self.h.services, a.key, unit_symbol(tag.unit) if tag else "")
            ui.label(f"limit {limit}" if limit else "").classes("pl-muted text-sm").props(
                'data-testid="alarm-limit"')
        if a.machine and tag is not None and tag.type in ("float", "int"):
            ui.link("Trend", trend_link(self.h, a)).classes("pl-touch").props('data-testid="alarm-trend"')

    def _value(self, tag: TagView | None) -> str:
        if tag is None:
            return "—"
        s = self.h.hub.sample(tag.tag_id)
        return tag.text(s.value, s.reason)

    def _update_values(self) -> None:
        for tag, label in self.values.values():
            text = self._value(tag)
            if text != label.text:  # only what changed goes to the browser
                label.set_text(text)

    # -- actions ----------------------------------------------------------------------------------
    async def _done(self, message: str) -> None:
        ui.notify(message, type="positive")
        self.render(force=True)
        if callable(self.on_action):
            await self.on_action()

    async def _ack(self, keys: list[str]) -> None:
        try:
            await data.acknowledge(self.h.services, self.principal, keys, self.comment.value or None)
        except AlarmActionError as exc:
            ui.notify(str(exc), type="negative")
            self.render(force=True)
            return
        self.comment.set_value("")
        await self._done(f"{len(keys)} alarm{'s' if len(keys) != 1 else ''} acknowledged")

    async def _ack_shown(self) -> None:
        keys = [a.key for a in self.shown if a.state in UNACKNOWLEDGED and a.site in self.operator_sites]
        if keys:
            await self._ack(keys)

    def _ask_shelve(self, a: AlarmView) -> None:
        self.dialogs.clear()
        with self.dialogs, ui.dialog() as dialog, ui.card().classes("min-w-[360px]"):
            ui.label(f"Shelve: {a.message or a.key}").classes("text-lg")
            minutes = ui.toggle(SHELVE_MINUTES, value=60).props('no-caps data-testid="shelve-minutes"')
            reason = ui.input("Reason (required)").props('outlined data-testid="shelve-reason" maxlength=2000'
                                                          ).classes("w-full")
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes("pl-touch")
                ui.button("Shelve", on_click=lambda: self._shelve(dialog, a.key, minutes.value, reason.value)).props(
                    'unelevated no-caps color=blue-grey-8 data-testid="shelve-confirm"').classes("pl-touch")
        dialog.open()

    async def _shelve(self, dialog: ui.dialog, key: str, minutes: int, reason: str) -> None:
        try:
            await data.shelve(self.h.services, self.principal, key, float(minutes), reason or "")
        except AlarmActionError as exc:
            ui.notify(str(exc), type="negative")
            return
        dialog.close()
        await self._done(f"shelved for {SHELVE_MINUTES.get(minutes, f'{minutes} min')}")

    def _ask_service(self, a: AlarmView, out: bool) -> None:
        """Take an alarm out of service (``out``) or return it, with a comment (required)."""
        self.dialogs.clear()
        title = "Take out of service" if out else "Return to service"
        with self.dialogs, ui.dialog() as dialog, ui.card().classes("min-w-[360px]"):
            ui.label(f"{title}: {a.message or a.key}").classes("text-lg")
            comment = ui.input("Comment (required)").props('outlined data-testid="oos-comment" maxlength=2000'
                                                           ).classes("w-full")
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes("pl-touch")
                ui.button(title, on_click=lambda: self._service(dialog, a.key, out, comment.value)).props(
                    'unelevated no-caps color=blue-grey-8 data-testid="oos-confirm"').classes("pl-touch")
        dialog.open()

    async def _service(self, dialog: ui.dialog, key: str, out: bool, comment: str) -> None:
        try:
            await data.set_out_of_service(self.h.services, self.principal, key, out, comment or "")
        except AlarmActionError as exc:
            ui.notify(str(exc), type="negative")
            return
        dialog.close()
        await self._done("taken out of service" if out else "returned to service")

    async def _unshelve(self, key: str) -> None:
        try:
            await data.unshelve(self.h.services, self.principal, key)
        except AlarmActionError as exc:
            ui.notify(str(exc), type="negative")
            return
        await self._done("returned to service")


class Journal:
    """The latest transitions of the user's sites' alarms (newest first)."""

    def __init__(self, h: Hmi, principal: Principal):
        self.h, self.principal = h, principal
        self.last: tuple[Any, ...] = ()

    def build(self) -> None:
        ui.label("Alarm history (journal)").classes("text-lg font-semibold")
        self.box = ui.column().classes("w-full gap-0").props('data-testid="alarm-journal"')
        live_timer(JOURNAL_S, self.render)

    async def render(self) -> None:
        entries = await asyncio.to_thread(data.alarm_journal, self.h.services, self.principal)
        sig = tuple((e.id, e.ts_us) for e in entries)
        if sig == self.last:
            return
        self.last = sig
        self.box.clear()
        with self.box:
            if not entries:
                ui.label("Nothing recorded yet.").classes("pl-muted")
            for e in entries:
                tz = self.h.view.site(e.site).timezone
                with ui.row().classes("items-center gap-3 w-full border-b border-gray-300 py-1 flex-wrap text-sm"
                                      ).props(f'data-entry="{e.id}" data-event="{e.event}" data-alarm="{e.alarm}"'):
                    ui.label(local_time(e.ts_us, tz, True)).classes("w-44")
                    ui.label(theme.priority_look(e.priority).label).classes("w-16")
                    ui.label(short_path(e.alarm)).classes("w-96").style("overflow-wrap: anywhere").props(
                        f'title="{e.alarm}"')
                    ui.label(e.event).classes("w-24 font-semibold")
                    ui.label(f"{theme.ALARM_STATE_LABEL.get(e.from_state, e.from_state)} → "
                             f"{theme.ALARM_STATE_LABEL.get(e.to_state, e.to_state)}").classes("w-80")
                    ui.label(e.actor + (f": {e.comment}" if e.comment else "")).classes("grow")


def trend_link(h: Hmi, a: AlarmView) -> str:
    """The machine page opened on the trend of the alarm's tag, from a few minutes before it became active to
    now (``Hmi.page``: for ``ui.link``)."""
    start = (a.activated_us if a.activated_us is not None else a.since_us) - TREND_BEFORE_MIN * 60_000_000
    return f"{h.page('machine', a.machine)}?{urlencode({'tag': a.tag, 'from': start})}"


def short_path(path: str) -> str:
    """An alarm or tag as people read it in a list: from the line on (``press-line-1/press1/tonnage.high``),
    not the enterprise's whole path (kept in the tooltip)."""
    parts = path.split("/")
    return "/".join(parts[2:]) if len(parts) > 3 else path
