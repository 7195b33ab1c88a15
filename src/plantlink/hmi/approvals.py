"""Two-person writes, seen by the second person: a badge in every page's header counts the critical writes
waiting for this user's approval (a link to the approvals page), and a list, on that page and on the machine
page, shows each request in full: who asks, the tag, current and new value with the unit, the limits, the
time left, and Approve / Reject (with an optional note the requester reads)."""

from __future__ import annotations

import time
from collections.abc import Awaitable

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.control.records import ControlRefused, Staged
from plantlink.display import unit_symbol
from plantlink.hmi import data
from plantlink.hmi.data import TagView
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import Hmi, open_page
from plantlink.identity import Principal

REFRESH_S = 1.0


def request_text(s: Staged, tag: TagView | None = None) -> str:
    """``erin asks to set Oven zone 1 setpoint from 180.0 °C to 190.0 °C (min 120, max 230, max_step 20)``: the
    tag's display name and its values as the machine page shows them (unit symbol, decimals, code words)."""
    limits = ", ".join(f"{k} {v}" for k, v in s.limits.items() if v is not None) if s.limits else ""
    if tag is not None:
        current, new, name = ("—" if s.current is None else tag.text(s.current)), tag.text(s.new), tag.label
    else:
        unit = f" {unit_symbol(s.unit)}" if s.unit else ""
        current = "—" if s.current is None else f"{s.current}{unit}"
        new, name = f"{s.new}{unit}", s.tag.rsplit("/", 1)[-1]
    return f"{s.user} asks to set {name} from {current} to {new}" + (f" ({limits})" if limits else "")


def time_left(s: Staged) -> str:
    return f"{max(0, round(s.expires_at - time.time()))} s left"


class ApprovalList:
    """The requests ``principal`` may decide (of one machine, or of the plant), kept up to date."""

    def __init__(self, h: Hmi, principal: Principal, machine: str | None = None):
        self.h, self.principal, self.machine = h, principal, machine
        self.shown: tuple[str, ...] | None = None
        self.lefts: dict[str, tuple[Staged, ui.label]] = {}

    def build(self) -> None:
        self.box = ui.column().classes("w-full gap-1").props('data-testid="approvals"')
        self.refresh()
        live_timer(REFRESH_S, self.refresh)

    def refresh(self) -> None:
        pending = data.approvals(self.h.services, self.principal, self.machine)
        sig = tuple(s.id for s in pending)
        for s, label in self.lefts.values():
            label.set_text(time_left(s))
        if sig == self.shown:
            return
        self.shown = sig
        self.box.clear()
        self.lefts = {}
        with self.box:
            if not pending and self.machine is None:
                ui.label("No write is waiting for your approval.").classes("pl-muted").props(
                    'data-testid="no-approvals"')
            for s in pending:
                self._row(s)

    def _row(self, s: Staged) -> None:
        with ui.row().classes("items-center gap-3 w-full flex-wrap border-b border-gray-300 py-1").props(
                f'data-approve="{s.id}"'):
            text = request_text(s, self.h.view.tags.get(s.tag))
            ui.label(text).classes("font-semibold").props('data-testid="approval-request"')
            left = ui.label(time_left(s)).classes("pl-muted").props('data-testid="approval-left"')
            self.lefts[s.id] = (s, left)
            note = ui.input("Note (optional)").props('dense outlined data-testid="approval-note"').classes("w-56")
            ui.button("Approve", on_click=lambda sid=s.id: self._approve(sid)).props(
                'unelevated no-caps color=blue-grey-8 data-testid="approve"').classes("pl-touch")
            ui.button("Reject", on_click=lambda sid=s.id, n=note: self._reject(sid, str(n.value or ""))).props(
                'outline no-caps data-testid="reject"').classes("pl-touch")

    async def _approve(self, staged_id: str) -> None:
        await self._decide(data.approve(self.h.services, self.principal, staged_id),
                           "approved: the requester may now confirm")

    async def _reject(self, staged_id: str, note: str) -> None:
        await self._decide(data.reject(self.h.services, self.principal, staged_id, note),
                           "rejected: the requester sees it")

    async def _decide(self, decision: Awaitable[Staged], done: str) -> None:
        try:
            await decision
        except ControlRefused as exc:
            ui.notify(exc.message, type="negative")
            return
        ui.notify(done, type="positive")
        self.shown = None
        self.refresh()


class ApprovalBadge:
    """In the header: how many writes wait for this user's approval, a link to the approvals page; hidden at 0."""

    def __init__(self, h: Hmi, principal: Principal):
        self.h, self.principal = h, principal

    def build(self) -> None:
        with ui.element("a").props(f'href="{self.h.href("approvals")}" data-testid="approvals-badge"').classes(
                "no-underline text-white pl-touch flex items-center gap-1 rounded px-2") as self.link:
            ui.icon("how_to_reg")
            self.count = ui.label("")
        self.link.style("background: #8a5a00")
        self.refresh()
        live_timer(REFRESH_S, self.refresh)

    def refresh(self) -> None:
        n = len(data.approvals(self.h.services, self.principal))
        self.count.set_text(f"{n} to approve")
        self.link.props(f'data-count="{n}"')
        self.link.set_visibility(n > 0)


async def approvals_page(request: Request) -> Response | None:
    opened = open_page(request, "Approvals")
    if isinstance(opened, Response):
        return opened
    h, principal = opened
    with ui.element("div").classes("pl-panel w-full"):
        ui.label("Writes waiting for a second person").classes("text-lg font-semibold")
        ApprovalList(h, principal).build()
    return None
