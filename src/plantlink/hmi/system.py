"""The system page: is plantlink itself well, and if not, why, in the words of the health report
(``services.health``, the same as ``GET /api/v1/health`` and ``plantlink status``): every device of the sites
the caller may view (state, since when, the last problem and every refused tag), the historian, the write-ahead
log, the recorder, MQTT publishing and the edges. It reads the report again every few seconds, so a device
that drops out or comes back shows without a reload. For every viewer."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import open_page
from plantlink.services.health import DeviceReport, HealthReport

REFRESH_S = 3.0
_CELL = "padding: 0.15rem 1rem 0.15rem 0; vertical-align: top"
_STATE_STYLE = {"connected": "text-green-800", "connecting": "text-amber-800", "reconnecting": "text-amber-800",
                "down": "text-red-800 font-bold", "stopped": "pl-muted"}


async def system_page(request: Request) -> Response | None:
    opened = open_page(request, "System")
    if isinstance(opened, Response):
        return opened
    h, who = opened
    body = ui.column().classes("w-full gap-3").props('data-testid="system"')

    async def show() -> None:
        try:
            report = await asyncio.to_thread(h.services.health.report, who)
        except PlantlinkError as exc:
            body.clear()
            with body:
                ui.label(f"The health report cannot be shown: {exc}").classes("font-bold text-red-800").props(
                    "role=alert")
            return
        body.clear()
        with body:
            _summary(report)
            _devices(report.devices)
            _parts(report)

    await show()
    live_timer(REFRESH_S, show, immediate=False)  # only while the page is open and its session good
    return None


def _summary(report: HealthReport) -> None:
    ok = report.status == "ok"
    testid = f'data-testid="system-status" data-status="{report.status}"'
    with ui.element("div").classes("pl-panel w-full").props(testid):
        ui.label("All systems normal" if ok else "Degraded: what needs attention").classes(
            "text-lg font-semibold " + ("text-green-800" if ok else "text-red-800"))
        for reason in report.reasons:
            ui.label(reason).classes("break-words").props('data-testid="system-reason"')


def _devices(devices: tuple[DeviceReport, ...]) -> None:
    with ui.element("div").classes("pl-panel w-full overflow-x-auto"):
        ui.label("Devices").classes("text-lg font-semibold")
        if not devices:
            ui.label("No device is read for the sites you may view.").classes("pl-muted")
            return
        with ui.element("table").classes("w-full text-left"), ui.element("tbody"):
            with ui.element("tr"):
                for col in ("Device", "Protocol", "State", "Samples", "Problems"):
                    with ui.element("th").style(_CELL):
                        ui.label(col)
            for d in devices:
                _device_row(d)


def _device_row(d: DeviceReport) -> None:
    c = d.counters
    problems = [*([d.last_error] if d.last_error and d.status != "connected" else []), *(c.get("issues") or ())]
    with ui.element("tr").classes("align-top border-t").props(
            f'data-testid="system-device" data-device="{d.device}" data-state="{d.status}"'):
        with ui.element("td").classes("font-semibold").style(_CELL):
            ui.label(d.device)
        with ui.element("td").style(_CELL):
            ui.label(str(c.get("protocol", "")))
        with ui.element("td").style(_CELL):
            ui.label(d.status).classes(_STATE_STYLE.get(d.status, ""))
        with ui.element("td").style(_CELL):
            ui.label(f"{int(c.get('samples', 0)):,}")
        with ui.element("td").classes("break-words").style(_CELL):
            for p in problems:
                ui.label(p).props('data-testid="system-device-problem"')
            if not problems:
                ui.label("none").classes("pl-muted")


def _parts(report: HealthReport) -> None:
    parts: list[tuple[str, Any]] = [("Historian", report.historian), ("Write-ahead log", report.wal),
                                    ("Recorder", report.recorder), ("Relational store", report.store),
                                    ("Notifications", report.notifier),
                                    *((f"Publishing: {k}", v) for k, v in report.publish.items()),
                                    *((f"Edge {k}", v) for k, v in report.edges.items())]
    with ui.element("div").classes("pl-panel w-full"):
        ui.label("Services").classes("text-lg font-semibold")
        for name, status in parts:
            if status is None:
                continue
            with ui.row().classes("gap-2 items-baseline").props(f'data-testid="system-part" data-part="{name}"'):
                ui.label(name).classes("font-semibold")
                ui.label(_brief(status)).classes("pl-muted text-sm break-words")


def _brief(status: Any) -> str:
    """A part's status in one line: its plain figures (numbers, words, flags), not its nested details."""
    if not isinstance(status, dict):
        return str(status)
    shown = [f"{k.replace('_', ' ')}: {_word(v)}" for k, v in status.items()
             if isinstance(v, str | int | float | bool) and not k.endswith("_path")]
    return "; ".join(shown[:8]) or "ok"


def _word(v: str | float | bool) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:,}" if isinstance(v, int) else str(v)
