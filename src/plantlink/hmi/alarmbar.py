"""The alarm banner in the header of every page: the user's annunciated alarms counted per priority (coloured
only when there are some), each count labelled with its priority (a visible initial, the name in its tooltip
and aria-label), a link to the alarm summary. It looks at the engine every ``PERIOD_S``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nicegui import ui

from plantlink.hmi import data, theme
from plantlink.hmi.guard import live_timer
from plantlink.identity import Principal

if TYPE_CHECKING:
    from plantlink.services import Services

PERIOD_S = 0.5


class AlarmBanner:
    def __init__(self, services: Services, principal: Principal, href: str):
        self.services, self.principal, self.href = services, principal, href
        self.counts: dict[str, int] = {}
        self.cells: dict[str, ui.element] = {}
        self.counts_text: dict[str, ui.label] = {}

    def build(self) -> None:
        with ui.element("a").classes("pl-alarmbar pl-touch").props(
                f'href="{self.href}" data-testid="alarm-banner" aria-label="Alarm summary"'):
            ui.icon("notifications").classes("text-white text-2xl")
            for p in theme.PRIORITY_LOOK:
                look = theme.priority_look(p)
                with ui.element("span").classes("pl-count").style(
                        f"background: {look.background}; color: {look.text}").props(
                        f'data-priority="{p}" data-count="0" title="{look.label} alarms: 0"'
                        f' aria-label="{look.label} alarms: 0"') as cell:
                    ui.label(p[0].upper()).classes("pl-count-label").props('aria-hidden="true"')
                    self.counts_text[p] = ui.label("0").props('data-testid="count"')
                self.cells[p] = cell
        self.update()
        live_timer(PERIOD_S, self.update)

    def update(self) -> None:
        counts = data.alarm_counts(data.active_alarms(self.services, self.principal))
        if counts == self.counts:
            return
        self.counts = counts
        for p, cell in self.cells.items():
            n = counts.get(p, 0)
            self.counts_text[p].set_text(str(n))
            label = f"{theme.priority_look(p).label} alarms: {n}"
            cell.props(f'data-count="{n}" title="{label}" aria-label="{label}"')
