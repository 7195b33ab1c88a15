"""Machine states: now, and the timeline of one machine."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from plantlink.api import queries
from plantlink.api.routes.deps import DEFAULT_LIMIT, Limit, Offset, TimeArg, Who, json_response, services, time_range
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/states", tags=["states"])


@router.get("", summary="Each machine's current state and since when (optionally of one site or line)")
def states_now(who: Who, rt: Services = Depends(services), site: str | None = None, line: str | None = None
               ) -> JSONResponse:
    return json_response({"states": queries.states_now(rt, who, site=site, line=line)})


@router.get("/timeline", summary="A machine's state intervals in [start, end) (default: the last 24 h)")
def timeline(machine: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None,
             limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> JSONResponse:
    s, e = time_range(start, end, 86400.0)
    return json_response(queries.state_timeline(rt, who, machine, s, e, limit=limit, offset=offset))
