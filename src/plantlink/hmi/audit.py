"""The audit page (admins): the hash-chained audit trail filtered by time, actor, kind and site, a CSV export
link to the API (``/api/v1/audit/export.csv`` with the same filters) and the result of the chain check."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.audit import AuditRecord
from plantlink.hmi import data
from plantlink.hmi.widgets import Hmi, forbidden, local_time, open_page, zone_note
from plantlink.identity import Principal
from plantlink.samples import now_us

EXPORT_PATH = "/api/v1/audit/export.csv"
#: long tokens (paths, digests) break where they must, words stay whole (break-all cut every word)
WRAP_LONG = "overflow-wrap: anywhere"
PERIODS_H: dict[int, str] = {1: "Last hour", 24: "Last 24 h", 168: "Last 7 days", 720: "Last 30 days", 0: "All time"}
LIMIT = 200


async def audit_page(request: Request) -> Response | None:
    opened = open_page(request, "Audit trail", _audit_gate)
    if isinstance(opened, Response):
        return opened
    h, principal = opened
    sites = data.alarm_sites(h.services, principal, "admin")
    page = AuditView(h, principal, sites)
    page.build()
    await page.render()
    return None


def _audit_gate(h: Hmi, principal: Principal) -> Response | None:
    if not data.alarm_sites(h.services, principal, "admin"):
        return forbidden("the audit trail is for administrators")
    return None


class AuditView:
    def __init__(self, h: Hmi, principal: Principal, sites: list[str]):
        self.h, self.principal = h, principal
        self.global_admin = data.can_read_audit(principal, None)
        self.sites = sites
        self.hours = 24
        self.site: str | None = None if self.global_admin else sites[0]
        #: one clock for the whole list: the zone of the caller's first site (records of every site, and of
        #: none, in that zone; named above the list)
        self.tz = h.view.site(sites[0]).timezone

    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full"):
            with ui.row().classes("items-center gap-3 w-full flex-wrap"):
                ui.label("Audit trail").classes("text-lg font-semibold")
                ui.select(PERIODS_H, value=self.hours, label="Time", on_change=lambda e: self._set(hours=e.value)
                          ).props('outlined dense data-testid="audit-period"').classes("min-w-[160px]")
                self.actor = ui.input("Actor (exact)").props('outlined dense clearable data-testid="audit-actor"')
                self.kind = ui.input("Kind or prefix (control.)").props(
                    'outlined dense clearable data-testid="audit-kind"').classes("min-w-[280px]")
                options = ({"": "All sites"} if self.global_admin else {}) | {s: s for s in self.sites}
                ui.select(options, value=self.site or "", label="Site",
                          on_change=lambda e: self._set(site=e.value or None)
                          ).props('outlined dense data-testid="audit-site"').classes("min-w-[160px]")
                ui.button("Apply", on_click=self.render).props(
                    'unelevated no-caps color=blue-grey-8 data-testid="audit-apply"').classes("pl-touch")
            with ui.row().classes("items-center gap-4 w-full flex-wrap"):
                with ui.element("a").classes("pl-link pl-touch flex items-center").props(
                        f'href="{EXPORT_PATH}" data-testid="audit-export" download') as self.export:
                    ui.label("Export CSV")
                self.chain = ui.label("").props('data-testid="audit-chain"')
                self.count = ui.label("").classes("pl-muted").props('data-testid="audit-count"')
                ui.label(zone_note(self.tz)).classes("pl-muted").props('data-testid="audit-zone"')
            self.box = ui.column().classes("w-full gap-0").props('data-testid="audit-list"')

    async def _set(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self, k, v)
        await self.render()

    def filters(self) -> dict[str, Any]:
        return {"start_us": now_us() - self.hours * 3600 * 1_000_000 if self.hours else None,
                "actor": (self.actor.value or "").strip() or None, "kind": (self.kind.value or "").strip() or None,
                "site": self.site}

    def export_href(self, f: dict[str, Any]) -> str:
        q = {"start": f["start_us"] // 1000 if f["start_us"] is not None else None,
             "actor": f["actor"], "kind": f["kind"], "site": f["site"]}
        query = urlencode({k: v for k, v in q.items() if v is not None})
        return EXPORT_PATH + (f"?{query}" if query else "")

    async def render(self) -> None:
        f = self.filters()
        rows = await asyncio.to_thread(lambda: data.audit_records(self.h.services, self.principal, **f, limit=LIMIT))
        self.export.props(f'href="{self.export_href(f)}"')
        self._chain()
        self.count.set_text(f"{len(rows)} record{'s' if len(rows) != 1 else ''}"
                            + (f" (the newest {LIMIT}; export for all)" if len(rows) >= LIMIT else ""))
        self.box.clear()
        with self.box:
            if not rows:
                ui.label("No records match.").classes("pl-muted")
            for r in rows:
                self._row(r)

    def _chain(self) -> None:
        if not self.global_admin:
            self.chain.set_text("Chain check: admin rights at every site are needed")
            return
        result = data.audit_verify(self.h.services, self.principal)
        if result is None:
            self.chain.set_text("No audit log")
        elif result.ok:
            self.chain.set_text(f"Chain verified: {result.checked} records intact")
        else:
            self.chain.set_text(f"CHAIN BROKEN at record {result.first_bad_id}: {result.reason}")
            self.chain.classes("font-bold text-red-800")
        self.chain.props(f'data-ok="{"true" if result is None or result.ok else "false"}"')

    def _row(self, r: AuditRecord) -> None:
        tz = self.tz
        row = "items-start gap-x-3 gap-y-0 w-full border-b border-gray-300 py-1 text-sm flex-wrap"
        with ui.row().classes(row).props(f'data-record="{r.id}" data-kind="{r.kind}"'):
            ui.label(local_time(r.ts_us, tz, True)).classes("w-48 shrink-0")
            ui.label(r.kind).classes("w-48 shrink-0 font-semibold")
            ui.label(r.actor).classes("w-28 shrink-0")
            ui.label(r.site or "—").classes("w-20 shrink-0")
            ui.label(r.target or "").classes("w-72 max-w-full shrink-0").style(WRAP_LONG)
            details = json.dumps(r.details, default=str)[:400]
            ui.label(details).classes("grow basis-64 min-w-0 pl-muted").style(WRAP_LONG)
