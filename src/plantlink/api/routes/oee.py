"""OEE of a machine, line, area or site: live (today / current shift), over a range, or per shift."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api import queries
from plantlink.api.routes.deps import TimeArg, Who, json_response, services, time_range
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/oee", tags=["oee"])
Scope = Annotated[str, Query(description="site, site/area, site/area/line or site/area/line/machine")]


@router.get("", summary="OEE (ISO 22400-2): period=today|shift, or a start/end range")
def get_oee(scope: Scope, who: Who, rt: Services = Depends(services),
            period: Annotated[str | None, Query(description="today or shift (live, cached a few s)")] = None,
            start: TimeArg = None, end: TimeArg = None) -> JSONResponse:
    if start is None and end is None:
        return json_response(queries.oee_period(rt, who, scope, period or "today"))
    s, e = time_range(start, end, 86400.0)
    return json_response(queries.oee(rt, who, scope, s, e))


@router.get("/shifts", summary="OEE of each shift in [start, end) (default: the last 24 h)")
def by_shift(scope: Scope, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None
             ) -> JSONResponse:
    s, e = time_range(start, end, 86400.0)
    return json_response({"shifts": queries.oee_by_shift(rt, who, scope, s, e)})
