"""Line analytics: bottleneck, cost of losses, downtime reason tree."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from plantlink.api import queries
from plantlink.api.routes.deps import TimeArg, Who, json_response, services, time_range
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/lines", tags=["lines"])


@router.get("/bottleneck", summary="Which machine constrains the line in [start, end) (default: 8 h)")
def get_bottleneck(line: str, who: Who, rt: Services = Depends(services), start: TimeArg = None,
                   end: TimeArg = None) -> JSONResponse:
    s, e = time_range(start, end, 8 * 3600.0)
    return json_response(queries.bottleneck(rt, who, line, s, e))


@router.get("/costs", summary="Cost of availability, performance and quality losses (default: 24 h)")
def get_costs(line: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None
              ) -> JSONResponse:
    s, e = time_range(start, end, 86400.0)
    return json_response(queries.line_costs(rt, who, line, s, e))


@router.get("/reasons", summary="The line's downtime reason tree: group -> reasons")
def get_reasons(line: str, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response({"line": line.strip("/"), "groups": queries.reasons(rt, who, line)})
