"""Line analytics: bottleneck, cost of losses, downtime reason tree."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plantlink.api import queries
from plantlink.api.routes.deps import TimeArg, Who, json_response, services, time_range
from plantlink.services import Services
from plantlink.services.handover import MAX_TEXT

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


class HandoverIn(BaseModel):
    line: str = Field(description="the line's path: site/area/line")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    replaces: int | None = Field(None, ge=1, description="the id of an earlier note of the line this one corrects")


@router.get("/handover", summary="The line's shift handover notes: the current shift's and the previous one's")
def get_handover(line: str, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(rt.handover.board(who, line).as_json())


@router.post("/handover", summary="Add a handover note to the current shift (operator; append-only, audited)")
def post_handover(who: Who, body: Annotated[HandoverIn, Body()], rt: Services = Depends(services)) -> JSONResponse:
    return json_response(asdict(rt.handover.write(who, body.line, body.text, body.replaces)))
