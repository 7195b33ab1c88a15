"""Downtime events: list, one, assign a reason, Pareto."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plantlink.api import queries
from plantlink.api.params import RowId
from plantlink.api.routes.deps import (
    DEFAULT_LIMIT,
    Limit,
    Offset,
    TimeArg,
    Who,
    json_response,
    optional_time,
    services,
    time_range,
)
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/downtime", tags=["downtime"])


class ReasonIn(BaseModel):
    reason: str | None = Field(description="a reason of the line's tree; null clears it")
    group: str | None = Field(None, description="needed when the reason is in several groups")
    comment: str | None = Field(None, max_length=2000)


@router.get("", summary="Downtime events, newest first (paginated; filters)")
def list_events(who: Who, rt: Services = Depends(services), site: str | None = None, line: str | None = None,
                machine: str | None = None, state: str | None = None, micro: bool | None = None,
                shift: str | None = None, has_reason: bool | None = None, start: TimeArg = None,
                end: TimeArg = None, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> JSONResponse:
    return json_response(queries.downtime_events(
        rt, who, site=site, start_us=optional_time(start, "start"), end_us=optional_time(end, "end"), limit=limit,
        offset=offset, line=line, machine=machine, state=state, micro=micro, shift=shift, has_reason=has_reason))


@router.get("/pareto", summary="Lost time by reason, machine or shift on a line or site")
def get_pareto(who: Who, rt: Services = Depends(services),
               by: Annotated[str, Query(description="reason, machine or shift")] = "reason",
               line: str | None = None, site: str | None = None, start: TimeArg = None, end: TimeArg = None
               ) -> JSONResponse:
    s, e = time_range(start, end, 86400.0)
    return json_response(queries.pareto(rt, who, by, s, e, line=line, site=site))


@router.get("/{event_id}", summary="One downtime event")
def get_event(event_id: RowId, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(queries.downtime_event(rt, who, event_id))


@router.put("/{event_id}/reason", summary="Assign (or clear) the reason of a downtime event (operator)")
def put_reason(event_id: RowId, who: Who, body: Annotated[ReasonIn, Body()], rt: Services = Depends(services)
               ) -> JSONResponse:
    return json_response(queries.assign_reason(rt, who, event_id, body.reason, group=body.group,
                                               comment=body.comment))
