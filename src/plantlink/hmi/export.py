"""The Export menu of the pages (issue 10, item 11): what the page shows, over the range it shows, downloaded
through the API's ``/api/v1/export/<kind>`` (the session cookie authenticates it; the file streams from there).

Before the download starts the size is planned through ``services.export`` (the same plan the API makes): an
export over ``CONFIRM_ROWS`` rows or ``CONFIRM_BYTES`` asks first, saying its size; one the API would refuse (an
XLSX longer than a sheet, no rights) is refused here with the same words. The link is a plain ``/api/...`` path
(not an HMI page: ``Hmi.href`` builds those), clicked with ``download`` set, as the audit page's export link.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.hmi.widgets import Hmi
from plantlink.identity import Principal
from plantlink.services import Services
from plantlink.services import export as ex

EXPORT_PATH = "/api/v1/export"
LABELS = {"csv": "CSV", "parquet": "Parquet", "xlsx": "Excel (XLSX)"}


@dataclass(frozen=True)
class Spec:
    """One export as a page sees it now: the kind, the range shown and the API's other parameters."""

    kind: str
    start_us: int
    end_us: int
    params: dict[str, str] = field(default_factory=dict)

    def url(self, fmt: str) -> str:
        query = {**self.params, "start": self.start_us // 1000, "end": -(-self.end_us // 1000), "format": fmt}
        return f"{EXPORT_PATH}/{self.kind}?{urlencode(query)}"


def plan(svc: Services, who: Principal, spec: Spec, fmt: str) -> ex.Export:
    """The export the API will make of ``spec`` (rights and format checked; rows known or estimated)."""
    p, s, e = spec.params, spec.start_us // 1000 * 1000, -(-spec.end_us // 1000) * 1000
    if spec.kind == "trend":
        found = ex.trend(svc, who, [t for t in p["tag"].split(",") if t], s, e)
    elif spec.kind == "oee":
        found = ex.oee(svc, who, p["scope"], s, e, p.get("by", "machine"))
    elif spec.kind == "energy":
        found = ex.energy(svc, who, p["scope"], s, e, p.get("by", "machine"))
    elif spec.kind == "downtime":
        found = ex.downtime(svc, who, s, e, site=p.get("site"), line=p.get("line"), machine=p.get("machine"))
    else:
        found = ex.pareto(svc, who, p.get("by", "reason"), s, e, line=p.get("line"), site=p.get("site"))
    ex.check_format(found.kind, fmt, found.rows)
    return found


def export_menu(h: Hmi, who: Principal, kind: str, spec: Callable[[], Spec | None], testid: str) -> None:
    """An Export button whose menu offers the kind's formats; ``spec`` says what the page shows right now."""
    with ui.button("Export", icon="download").props(f'flat no-caps data-testid="{testid}"').classes("pl-touch"), \
            ui.menu().props(f'data-testid="{testid}-menu"'):
        for fmt in (f for f in ex.FORMATS[kind] if f in LABELS):  # Arrow is for programs (the Python API)
            ui.menu_item(LABELS[fmt], on_click=lambda f=fmt: start(h, who, spec(), f)).props(
                f'data-testid="{testid}-{fmt}"')


async def start(h: Hmi, who: Principal, spec: Spec | None, fmt: str) -> None:
    """Plan the export, ask first when it is large, then start the download."""
    if spec is None:
        ui.notify("Nothing to export here.", type="warning")
        return
    try:
        found = await asyncio.to_thread(plan, h.services, who, spec, fmt)
    except PlantlinkError as exc:
        ui.notify(str(exc), type="negative", multi_line=True)
        return
    url = spec.url(fmt)
    if not ex.needs_confirm(found, fmt):
        download(url)
        return
    with ui.dialog() as dialog, ui.card().props('data-testid="export-confirm"'):
        def go() -> None:
            dialog.close()
            download(url)

        ui.label(size_text(found, fmt)).classes("text-base")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Cancel", on_click=dialog.close).props("flat no-caps").classes("pl-touch")
            ui.button("Download", on_click=go).props(
                'unelevated no-caps color=blue-grey-8 data-testid="export-go"').classes("pl-touch")
    dialog.open()


def size_text(found: ex.Export, fmt: str) -> str:
    about = "" if found.exact else "about "
    mb = ex.estimate_bytes(found, fmt) / 1e6
    return (f"This export has {about}{found.rows:,} rows, about {mb:,.0f} MB as {LABELS[fmt]}. "
            "It is streamed: it may take a while. Download it?")


def download(url: str) -> None:
    """Click a link to the API with ``download`` set (not ``ui.download``: it would prefix the HMI's mount)."""
    ui.run_javascript("(() => { const a = document.createElement('a'); a.href = " + json.dumps(url) +
                      "; a.download = ''; a.rel = 'noopener'; a.dataset.export = 'true';"
                      " document.body.appendChild(a); a.click(); a.remove(); })()")
