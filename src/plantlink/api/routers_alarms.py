"""Alarm routes under /api/v1/alarms: active list, history, acknowledge, shelve, out of service, performance,
failed notifications. Reading needs viewer rights at the alarm's site, acting needs operator rights.

The router works through ``services.alarms`` (``plantlink.api.services``); 503 when the alarm system is not
running. Alarm keys
(``<tag path>:<alarm name>``) contain slashes, so they travel in query strings and bodies, not in paths.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from plantlink.api.audited import audited_route
from plantlink.api.params import Limit, Offset
from plantlink.api.security import authorize, current_principal
from plantlink.api.services import running
from plantlink.errors import InvalidValue, Unavailable
from plantlink.identity import Principal, Role
from plantlink.model.alarms import PRIORITIES
from plantlink.services.alarms import STATES, Alarms


def service(request: Request) -> Alarms:
    """The alarms service; 503 when the alarm system is not running and its journal cannot be read either (the
    routes that need the running system answer 503 themselves: ``Alarms.service``)."""
    return running(request, lambda s: s.alarms if s.alarms.readable else None, "the alarm system")


#: The audit kind of an action whose request does not validate, by route name (the service records the rest).
_REFUSED_KIND = {"acknowledge": "alarm.ack_refused", "shelve": "alarm.shelve_refused",
                 "unshelve": "alarm.unshelve_refused", "out_of_service": "alarm.out_of_service_refused"}


def _record_invalid(request: Request, kind: str, who: Principal, message: str, field: str | None) -> None:
    with contextlib.suppress(Unavailable):  # no alarm system: the request is refused with 503 anyway
        service(request).record_refusal(kind, who, message, field)


router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"],
                   route_class=audited_route(_REFUSED_KIND, _record_invalid))
Caller = Annotated[Principal, Depends(current_principal)]


Svc = Annotated[Alarms, Depends(service)]


def _us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def _sites(svc: Alarms, who: Principal, site: str | None, role: Role) -> list[str]:
    known = svc.known_sites()
    if site is not None:
        authorize(who, site, role)
        return [site]
    return who.sites(known, role)


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


_SORTS = {"priority": lambda v: (PRIORITIES.index(v["priority"]), -v["since_us"]),
          "-time": lambda v: -v["since_us"], "time": lambda v: v["since_us"],
          "site": lambda v: (v["site"], v["key"]), "key": lambda v: v["key"]}


@router.get("", summary="Alarms in the given states (default: the annunciated ones), filtered, sorted, paged")
async def active(svc: Svc, who: Caller, site: str | None = None, machine: str | None = None,
                 priority: Annotated[list[str] | None, Query()] = None,
                 state: Annotated[list[str] | None, Query()] = None, q: str | None = None,
                 sort: Literal["priority", "-time", "time", "site", "key"] = "priority",
                 limit: Limit = 100, offset: Offset = 0) -> Page:
    for s in state or []:
        if s not in STATES:
            raise InvalidValue(f"unknown state {s!r} (one of {', '.join(STATES)})", "state")
    sites = set(_sites(svc, who, site, "viewer"))
    rows = [v.to_dict() for v in svc.in_states(state) if v.site in sites]
    rows = [r for r in rows if (machine is None or r["machine"] == machine)
            and (not priority or r["priority"] in priority)
            and (q is None or q.lower() in (r["key"] + " " + r["message"]).lower())]
    rows.sort(key=_SORTS[sort])
    return Page(items=rows[offset:offset + limit], total=len(rows), limit=limit, offset=offset)


@router.get("/history", summary="The journal: every transition, newest first")
async def history(svc: Svc, who: Caller, start: datetime | None = None, end: datetime | None = None,
                  site: str | None = None, alarm: str | None = None,
                  event: Annotated[list[str] | None, Query()] = None,
                  limit: Limit = 100, offset: Offset = 0) -> Page:
    sites = _sites(svc, who, site, "viewer")
    entries, total = svc.journal_page(start_us=None if start is None else _us(start),
                                      end_us=None if end is None else _us(end),
                                      alarms=None if alarm is None else [alarm], sites=sites, events=event,
                                      limit=limit, offset=offset)
    return Page(items=[e.to_dict() for e in entries], total=total, limit=limit, offset=offset)


class AckBody(BaseModel):
    alarms: list[str] = Field(min_length=1, max_length=1000)
    comment: str | None = Field(default=None, max_length=2000)


@router.post("/ack", summary="Acknowledge (or reset, when latched) one or many alarms; all or none")
async def acknowledge(body: AckBody, svc: Svc, who: Caller) -> dict[str, Any]:
    news = await svc.acknowledge(who, body.alarms, body.comment)
    return {"acknowledged": [{"alarm": k, "state": s} for k, s in zip(body.alarms, news, strict=True)]}


class ShelveBody(BaseModel):
    alarm: str
    reason: str = Field(min_length=1, max_length=2000)
    minutes: float = Field(gt=0, le=7 * 24 * 60)


@router.post("/shelve", summary="Shelve an alarm for a set time, with a reason (unshelved automatically)")
async def shelve(body: ShelveBody, svc: Svc, who: Caller) -> dict[str, Any]:
    until = datetime.now(UTC) + timedelta(minutes=body.minutes)
    await svc.shelve_until(who, body.alarm, _us(until), body.reason)
    return {"alarm": body.alarm, "state": "shelved", "until": until.isoformat()}


class ActionBody(BaseModel):
    alarm: str
    comment: str | None = Field(default=None, max_length=2000)


@router.post("/unshelve", summary="Return a shelved alarm to service before its time")
async def unshelve(body: ActionBody, svc: Svc, who: Caller) -> dict[str, Any]:
    return {"alarm": body.alarm, "state": await svc.unshelve(who, body.alarm, body.comment)}


class ServiceBody(ActionBody):
    out: bool = True


@router.post("/out-of-service", summary="Take an alarm out of service (out: true) or return it (out: false)")
async def out_of_service(body: ServiceBody, svc: Svc, who: Caller) -> dict[str, Any]:
    return {"alarm": body.alarm, "state": await svc.out_of_service(who, body.alarm, body.out, body.comment)}


@router.get("/performance", summary="EEMUA 191 / ISA-18.2 figures over a range (default: the last 24 h)")
async def perf(svc: Svc, who: Caller, start: datetime | None = None, end: datetime | None = None,
               site: str | None = None) -> dict[str, Any]:
    e = datetime.now(UTC) if end is None else end
    s = e - timedelta(days=1) if start is None else start
    if _us(e) <= _us(s):
        raise InvalidValue("end must be after start", "end")
    return svc.performance_of(_us(s), _us(e), _sites(svc, who, site, "viewer")).to_dict()


@router.get("/notifications/failed", summary="Notification deliveries that failed or were rate limited")
async def failed(svc: Svc, who: Caller, site: str | None = None,
                 limit: Limit = 100, offset: Offset = 0) -> Page:
    rows, total = svc.deliveries(["failed", "rate_limited"], _sites(svc, who, site, "viewer"), limit, offset)
    return Page(items=[r.to_dict() for r in rows], total=total, limit=limit, offset=offset)
