"""The Report menu of the line page (issue 11, item 7): the report (``services.reports``) of the line over the
range the page shows, as HTML or PDF, downloaded through the API's ``/api/v1/reports`` (the session cookie
authenticates it; the API renders and audits it). The report is assembled here first, in a worker thread, so
that a range without data or without rights is said on the page, not downloaded as an error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlencode

from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.hmi.export import download
from plantlink.hmi.widgets import Hmi
from plantlink.identity import Principal

REPORTS_PATH = "/api/v1/reports"
LABELS = {"html": "Report (HTML)", "pdf": "Report (PDF)"}


def report_url(scope: str, start_us: int, end_us: int, fmt: str) -> str:
    query = {"scope": scope, "start": start_us // 1000, "end": -(-end_us // 1000), "format": fmt}
    return f"{REPORTS_PATH}?{urlencode(query)}"


def report_menu(h: Hmi, who: Principal, scope: str, shown: Callable[[], tuple[int, int]],
                testid: str = "report") -> None:
    """A Report button whose menu offers HTML and PDF of ``scope`` over the range ``shown`` returns."""
    with ui.button("Report", icon="summarize").props(f'flat no-caps data-testid="{testid}"').classes("pl-touch"), \
            ui.menu().props(f'data-testid="{testid}-menu"'):
        for fmt in ("pdf", "html"):
            ui.menu_item(LABELS[fmt], on_click=lambda f=fmt: start(h, who, scope, shown(), f)).props(
                f'data-testid="{testid}-{fmt}"')


async def start(h: Hmi, who: Principal, scope: str, shown: tuple[int, int], fmt: str) -> None:
    s, e = shown[0] // 1000 * 1000, -(-shown[1] // 1000) * 1000  # the range the API will get (ms)
    try:
        await asyncio.to_thread(h.services.reports.report, who, scope, start_us=s, end_us=e)
    except PlantlinkError as exc:
        ui.notify(str(exc), type="negative", multi_line=True)
        return
    ui.notify("The report is being prepared: the download starts in a moment.", type="info")
    download(report_url(scope, *shown, fmt))
