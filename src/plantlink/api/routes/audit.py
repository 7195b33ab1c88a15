"""The audit trail over HTTP (admins only): GET /api/v1/audit (a page), /api/v1/audit/export.csv (every
matching record, streamed, safe to open in a spreadsheet) and /api/v1/audit/verify (the hash chain).

Who may read: an admin at ``site`` reads that site's records (``site=`` is then required); an admin at every
site (``*``) reads everything, including the records that belong to no site (logins, users, tokens) and the
chain check. Every export is itself audited (``audit.exported``).

The router works through ``services.audit`` (``plantlink.api.services``); 503 when there is no audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from plantlink.api.routes.deps import TimeArg, Who, json_response, optional_time
from plantlink.api.security import authorize
from plantlink.api.services import running
from plantlink.api.timefmt import iso
from plantlink.audit import AuditLog
from plantlink.errors import AccessDenied, QueryError
from plantlink.identity import ALL_SITES, Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MAX_PAGE = 1000
MAX_OFFSET = 1_000_000
MAX_EXPORT = 10_000_000
_TEXT = 200


def audit_log(request: Request) -> AuditLog:
    """The audit trail's log; 503 when there is none (the runtime has not started its store)."""
    return running(request, lambda s: s.audit.log(), "the audit log")


Log = Annotated[AuditLog, Depends(audit_log)]
Actor = Annotated[str | None, Query(min_length=1, max_length=_TEXT, description="exact user (or cli:..., system:...)")]
Kind = Annotated[str | None, Query(min_length=1, max_length=_TEXT,
                                   description="exact kind (auth.login) or a prefix ending in '.' (auth.)")]
Site = Annotated[str | None, Query(min_length=1, max_length=_TEXT,
                                   description="records of one site (needed unless you are admin at every site)")]


def _global_admin(who: Principal) -> bool:
    return who.roles.get(ALL_SITES) == "admin"


def _check_reader(who: Principal, site: str | None) -> None:
    """403 unless ``who`` is admin at ``site`` (or, without a site, admin at every site)."""
    if site is not None:
        authorize(who, site, "admin")
    elif not _global_admin(who):
        raise AccessDenied("admin rights at every site are needed to read records of all sites; "
                           "name the site you administer (site=...)")


def _filters(who: Principal, start: str | None, end: str | None, actor: str | None, kind: str | None,
             site: str | None) -> dict[str, Any]:
    _check_reader(who, site)
    s, e = optional_time(start, "start"), optional_time(end, "end")
    if s is not None and e is not None and e < s:
        raise QueryError("reversed time range: end is before start", field="end")
    return {"start_us": s, "end_us": e, "actor": actor, "kind": kind, "site": site}


def _item(record: Any) -> dict[str, Any]:
    out = asdict(record)
    out["time"] = iso(record.ts_us)
    return out


@router.get("", summary="Audit records, newest first (admin; filters; paged)")
def list_records(who: Who, log: Log, start: TimeArg = None, end: TimeArg = None, actor: Actor = None,
                 kind: Kind = None, site: Site = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, 1..{MAX_PAGE}")] = 100,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="records to skip")] = 0
                 ) -> JSONResponse:
    filters = _filters(who, start, end, actor, kind, site)
    rows = list(islice(log.query(**filters, newest_first=True, limit=offset + limit + 1), offset, None))
    more = len(rows) > limit
    return json_response({"items": [_item(r) for r in rows[:limit]], "limit": limit, "offset": offset,
                          "next_offset": offset + limit if more else None})


@router.get("/export.csv", summary="Every matching record as CSV, oldest first (admin; streamed)",
            response_class=StreamingResponse)
def export_csv(who: Who, log: Log, start: TimeArg = None, end: TimeArg = None, actor: Actor = None,
               kind: Kind = None, site: Site = None,
               limit: Annotated[int | None, Query(ge=1, le=MAX_EXPORT, description="at most this many")] = None
               ) -> StreamingResponse:
    filters = _filters(who, start, end, actor, kind, site)
    log.record("audit.exported", who.name, site=site,
               details={k: v for k, v in filters.items() if v is not None and k != "site"} | {"limit": limit})
    lines: Iterator[str] = log.export_csv(**filters, limit=limit)
    name = f"plantlink-audit-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.csv"  # never from the request
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}"',
                                      "x-content-type-options": "nosniff", "cache-control": "no-store"})


@router.get("/verify", summary="Check the whole hash chain (admin at every site)")
def verify(who: Who, log: Log) -> JSONResponse:
    _check_reader(who, None)
    result = log.verify()
    return json_response({"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id,
                          "reason": result.reason})
