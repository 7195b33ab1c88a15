"""Alarm-system performance (EEMUA 191 / ISA-18.2) and failed notifications, on the alarm page.

Performance over the last hour, day or week for the user's sites: average alarms per operator per 10
minutes, the peak, the share of 10-minute periods in flood (more than 10), the 10 most frequent alarms,
chattering alarms (3 or more in a minute) and stale ones (active over 24 hours). Failed notifications: the
deliveries that failed after their retries. Both refresh every ``REFRESH_S`` seconds."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui

from plantlink.hmi import data
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import Hmi, local_time
from plantlink.identity import Principal

REFRESH_S = 10.0
WINDOWS: dict[int, str] = {3600: "last hour", 86400: "last 24 h", 7 * 86400: "last 7 days"}
#: EEMUA 191's benchmarks for one operator, per 10 minutes: acceptable on average, manageable at the peak.
EEMUA_AVG_OK, EEMUA_PEAK_OK = 1.0, 10


class PerformancePanel:
    def __init__(self, h: Hmi, principal: Principal):
        self.h, self.principal = h, principal
        self.window_s = 86400

    def build(self) -> None:
        with ui.row().classes("items-center gap-3 w-full"):
            ui.label("Alarm system performance (EEMUA 191)").classes("text-lg font-semibold")
            ui.select(WINDOWS, value=self.window_s, on_change=self._window).props(
                'dense outlined data-testid="perf-window"')
        self.box = ui.column().classes("w-full gap-1").props('data-testid="alarm-performance"')
        live_timer(REFRESH_S, self.render)

    async def _window(self, e: Any) -> None:
        self.window_s = int(e.value)
        await self.render()

    async def render(self) -> None:
        perf = await asyncio.to_thread(data.alarm_performance, self.h.services, self.principal, self.window_s)
        self.box.clear()
        with self.box:
            if perf is None:
                ui.label("The alarm system is not running.").classes("pl-muted")
                return
            self._figures(perf)
            self._lists(perf)

    def _figures(self, perf: dict[str, Any]) -> None:
        avg, peak = perf["avg_per_10min"], perf["peak_per_10min"]
        with ui.row().classes("gap-6 flex-wrap"):
            _figure("annunciations", str(perf["annunciations"]), "alarms")
            _figure("avg", f"{avg:.2f}", "per operator per 10 min", bad=avg > EEMUA_AVG_OK)
            _figure("peak", str(peak), "peak per 10 min", bad=peak > EEMUA_PEAK_OK)
            _figure("flood", f"{100 * perf['flood_share']:.1f} %", "of 10-min periods in flood",
                    bad=perf["flood_share"] > 0.01)

    def _lists(self, perf: dict[str, Any]) -> None:
        with ui.row().classes("gap-8 flex-wrap items-start w-full"):
            _table("top", "Most frequent", [(t["alarm"], f"{t['count']} ({100 * t['share']:.0f} %)")
                                            for t in perf["top"]])
            _table("chattering", "Chattering (3+ in a minute)",
                   [(c.get("alarm", ""), str(c.get("count", ""))) for c in perf["chattering"]])
            _table("stale", "Stale (active over 24 h)", [(s.get("key", ""), s.get("state", "")) for s in perf["stale"]])


def _figure(key: str, value: str, caption: str, bad: bool = False) -> None:
    with ui.column().classes("gap-0").props(f'data-figure="{key}" data-value="{value}"'):
        ui.label(value).classes("text-2xl font-semibold" + (" pl-abnormal" if bad else ""))
        ui.label(caption).classes("pl-muted text-sm")


def _table(key: str, title: str, rows: list[tuple[str, str]]) -> None:
    with ui.column().classes("gap-0 min-w-64").props(f'data-list="{key}"'):
        ui.label(title).classes("font-semibold")
        if not rows:
            ui.label("none").classes("pl-muted text-sm")
        for name, value in rows:
            with ui.row().classes("gap-3 text-sm").props(f'data-item="{name}"'):
                ui.label(name).classes("break-all")
                ui.label(value).classes("pl-muted")


class FailedNotifications:
    """Notifications that could not be delivered after their retries (newest first), for the user's sites."""

    def __init__(self, h: Hmi, principal: Principal):
        self.h, self.principal = h, principal
        self.last: tuple[Any, ...] = ()

    def build(self) -> None:
        ui.label("Failed notifications").classes("text-lg font-semibold")
        self.box = ui.column().classes("w-full gap-0").props('data-testid="failed-notifications"')
        live_timer(REFRESH_S, self.render)

    async def render(self) -> None:
        rows = await asyncio.to_thread(data.failed_deliveries, self.h.services, self.principal)
        sig = tuple((r["id"], r["updated_us"]) for r in rows)
        if sig == self.last and rows:
            return
        self.last = sig
        self.box.clear()
        with self.box:
            if not rows:
                ui.label("Every notification was delivered.").classes("pl-muted")
            for r in rows:
                tz = self.h.view.site(r["site"]).timezone
                with ui.row().classes("items-center gap-3 w-full border-b border-gray-300 py-1 text-sm flex-wrap"
                                      ).props(f'data-delivery="{r["id"]}" data-alarm="{r["alarm"]}"'):
                    ui.label(local_time(r["updated_us"], tz, True)).classes("w-44")
                    ui.label(f'{r["target"]} ({r["kind"]})').classes("w-48")
                    ui.label(r["alarm"]).classes("w-96 break-all")
                    ui.label(f'{r["attempts"]} attempts: {r["last_error"] or "?"}').classes("grow pl-abnormal")
