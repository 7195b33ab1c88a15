"""The setpoint panel of a machine page: each writable tag with a ``control:`` section, its current value,
limits, step and interlocks; for users with the tag's role at the site: Stage (select) -> the check (current,
new, limits, each interlock with its result, every refusal with its reason) -> Confirm within the timeout
(operate) -> the outcome (applied, refused why, failed why, unverified). Critical tags need a second person's
approval, given from the same panel by another user with the role. Viewers see the values only."""

from __future__ import annotations

import time
from typing import Any

from nicegui import ui

from plantlink.control.interlock import InterlockStatus
from plantlink.control.records import ControlRefused, Outcome, Staged
from plantlink.display import unit_symbol, value_text
from plantlink.hmi import data
from plantlink.hmi.approvals import ApprovalList, time_left
from plantlink.hmi.data import MachineView, Setpoint
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import Hmi
from plantlink.identity import Principal

REFRESH_S = 1.0
OK_MARK, BAD_MARK = "✔", "✘"


def limits_text(sp: Setpoint) -> str:
    s = sp.spec
    parts = []
    if s.allowed is not None:
        parts.append("allowed: " + ", ".join(_fmt(v, sp) for v in s.allowed))
    if s.min is not None or s.max is not None:
        lo = "—" if s.min is None else f"{s.min:g}"
        hi = "—" if s.max is None else f"{s.max:g}"
        parts.append(f"limits {lo} to {hi}" + (f" {unit_symbol(sp.unit)}" if sp.unit else ""))
    if s.max_step is not None:
        parts.append(f"step at most {s.max_step:g}")
    parts.append(f"role: {s.role}" + (", critical (two people)" if s.critical else ""))
    return " · ".join(parts)


def _fmt(v: Any, sp: Setpoint) -> str:
    if isinstance(v, bool) or sp.type == "bool":
        return "ON" if v else "OFF"
    return value_text(v, sp.unit, sp.type)


class SetpointPanel:
    def __init__(self, h: Hmi, machine: MachineView, principal: Principal):
        self.h, self.machine, self.principal = h, machine, principal
        self.setpoints = data.setpoints(h.view, machine)
        self.cards: dict[str, SetpointCard] = {}

    def build(self) -> None:
        if not self.setpoints:
            return
        with ui.element("div").classes("pl-panel w-full").props('data-testid="setpoints"'):
            ui.label("Setpoints").classes("text-lg font-semibold")
            with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 gap-2 w-full"):
                for sp in self.setpoints:
                    card = SetpointCard(self.h, sp, self.principal)
                    card.build()
                    self.cards[sp.path] = card
            self.approvals = ApprovalList(self.h, self.principal, self.machine.path)
            self.approvals.build()
        self.refresh()
        live_timer(REFRESH_S, self.refresh)

    def refresh(self) -> None:
        for card in self.cards.values():
            card.refresh()


class SetpointCard:
    def __init__(self, h: Hmi, sp: Setpoint, principal: Principal):
        self.h, self.sp, self.principal = h, sp, principal
        self.can_write = principal.can(sp.site, sp.spec.role)
        self.tag_id = int(h.services.tags.ids[sp.path])
        self.staged: Staged | None = None
        self.locks_shown: tuple[tuple[str, bool, str], ...] | None = None
        self.confirm_button: ui.button | None = None
        self.left: ui.label | None = None
        self.approval: ui.label | None = None

    def build(self) -> None:
        with ui.element("div").classes("pl-panel").props(f'data-setpoint="{self.sp.path}"'):
            with ui.row().classes("items-baseline gap-3"):
                ui.label(self.sp.name).classes("font-semibold")
                self.current = ui.label("—").classes("pl-value").props('data-testid="sp-current"')
            ui.label(limits_text(self.sp)).classes("pl-muted text-sm").props('data-testid="sp-limits"')
            self.interlocks = ui.column().classes("gap-0 text-sm").props('data-testid="sp-interlocks"')
            if self.can_write:
                with ui.row().classes("items-center gap-2"):
                    self.input = self._input()
                    ui.button("Stage", on_click=self.stage).props(
                        'unelevated no-caps color=blue-grey-8 data-testid="stage"').classes("pl-touch")
            self.check = ui.column().classes("w-full gap-1").props('data-testid="sp-check"')
            self.outcome = ui.label("").classes("font-semibold").props('data-testid="sp-outcome"')

    def _input(self) -> Any:
        spec = self.sp.spec
        if self.sp.type == "bool" or spec.allowed is not None:
            options = {v: _fmt(v, self.sp) for v in (spec.allowed or [True, False])}
            return ui.select(options, label="New value").props('outlined dense data-testid="sp-new"'
                                                               ).classes("min-w-[140px]")
        return ui.number("New value" + (f" ({unit_symbol(self.sp.unit)})" if self.sp.unit else "")).props(
            'outlined dense data-testid="sp-new"').classes("w-44")

    def refresh(self) -> None:
        s = self.h.hub.sample(self.tag_id)
        self.current.set_text(_fmt(s.value, self.sp) if s.value is not None else "—")
        self._show_interlocks(data.interlocks_now(self.h.services, self.sp))
        if self.staged is not None and time.time() > self.staged.expires_at:
            self.staged = None
            self.check.clear()
            with self.check:
                ui.label("The staged write expired: stage again.").classes("pl-muted").props(
                    'data-testid="sp-expired"')
        elif self.staged is not None:
            self._follow(self.staged)

    def _follow(self, s: Staged) -> None:
        """The time left to confirm, and (critical) the second person's decision as it comes."""
        if self.left is not None:
            self.left.set_text(f"confirm within {time_left(s).removesuffix(' left')}")
        if not s.critical or self.approval is None:
            return
        now = data.my_staged(self.h.services, self.principal, s.id)
        if now is not None and now.rejected_by is not None:
            self.staged = None
            self.check.clear()
            with self.check:
                note = f": {now.reject_note}" if now.reject_note else ""
                ui.label(f"{BAD_MARK} Rejected by {now.rejected_by}{note}").classes("font-bold").props(
                    'data-testid="sp-rejected"')
        elif now is not None and now.approved_by is not None and self.confirm_button is not None:
            self.approval.set_text(f"{OK_MARK} Approved by {now.approved_by}: you may confirm")
            self.approval.props('data-approved="true"')
            self.confirm_button.enable()

    def _show_interlocks(self, statuses: list[InterlockStatus]) -> None:
        sig = tuple((st.expression, st.ok, st.detail) for st in statuses)
        if sig == self.locks_shown:
            return
        self.locks_shown = sig
        self.interlocks.clear()
        with self.interlocks:
            if not statuses:
                ui.label("No interlocks").classes("pl-muted")
            for st in statuses:
                ui.label(f"{OK_MARK if st.ok else BAD_MARK} {st.expression}: {st.detail}").classes(
                    "" if st.ok else "font-bold").props(f'data-interlock-ok="{str(st.ok).lower()}"')

    # -- select before operate --------------------------------------------------------------------
    async def stage(self) -> None:
        self.outcome.set_text("")
        self.outcome.props(remove="data-status")
        value = self.input.value
        if value is None or value == "":
            ui.notify("enter the new value first", type="warning")
            return
        try:
            self.staged = await data.stage(self.h.services, self.principal, self.sp.path, value)
        except ControlRefused as exc:
            self.staged = None
            self._show_refused_outright(exc)
            return
        self._show_check(self.staged)

    def _show_refused_outright(self, exc: ControlRefused) -> None:
        self.check.clear()
        with self.check:
            ui.label(f"Refused ({exc.reason.value}): {exc.message}").classes("font-bold").props(
                f'data-refusal="{exc.reason.value}"')

    def _show_check(self, s: Staged) -> None:
        self.check.clear()
        with self.check, ui.element("div").classes("w-full border border-gray-400 rounded p-2"):
            ui.label(f"Change {self.sp.name} from {_fmt(s.current, self.sp) if s.current is not None else '—'} "
                     f"to {_fmt(s.new, self.sp)}").classes("font-semibold").props('data-testid="sp-change"')
            ui.label(limits_text(self.sp)).classes("text-sm")
            for st in s.interlocks:
                ui.label(f"{OK_MARK if st.ok else BAD_MARK} interlock {st.expression}: {st.detail}").classes(
                    "text-sm").props(f'data-interlock-ok="{str(st.ok).lower()}"')
            for r in s.refusals:
                ui.label(f"{BAD_MARK} Refused ({r.reason.value}): {r.message}").classes("font-bold").props(
                    f'data-refusal="{r.reason.value}"')
            self.confirm_button = self.left = self.approval = None
            if s.ok:
                if s.critical:  # Confirm stays disabled until a second person approves (it is asked meanwhile)
                    self.approval = ui.label("Critical: waiting for a second person with the role to approve "
                                             "before you confirm.").classes("font-semibold").props(
                        'data-testid="sp-needs-approval" data-approved="false"')
                with ui.row().classes("items-center gap-2"):
                    self.confirm_button = ui.button("Confirm", on_click=self.confirm).props(
                        'unelevated no-caps color=blue-grey-9 data-testid="confirm"').classes("pl-touch")
                    if s.critical and s.approved_by is None:
                        self.confirm_button.disable()
                    ui.button("Cancel", on_click=self.cancel).props("flat no-caps").classes("pl-touch")
                    self.left = ui.label(f"confirm within {time_left(s).removesuffix(' left')}").classes(
                        "pl-muted").props('data-testid="sp-left"')

    def cancel(self) -> None:
        self.staged = None
        self.check.clear()

    async def confirm(self) -> None:
        s = self.staged
        if s is None:
            ui.notify("nothing staged (expired?): stage again", type="warning")
            return
        self.staged = None
        self.check.clear()
        with self.check:
            ui.label("Writing…").classes("pl-muted")
        try:
            out = await data.confirm(self.h.services, self.principal, s.id)
        except ControlRefused as exc:
            self._show_refused_outright(exc)
            return
        self.check.clear()
        self._show_outcome(out)

    def _show_outcome(self, o: Outcome) -> None:
        text = {"applied": "Applied", "refused": "Refused", "failed": "Failed", "unverified": "Unverified"}[o.status]
        why = f" ({o.reason.value})" if o.reason else ""
        back = f"; read back {_fmt(o.read_back, self.sp)}" if o.read_back is not None else ""
        self.outcome.set_text(f"{text}{why}: {o.message}{back}")
        self.outcome.props(f'data-status="{o.status}"')
