"""GET /api/v1/hierarchy and /api/v1/overview."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api import queries
from plantlink.api.routes.deps import Who, json_response, services
from plantlink.services import Services

router = APIRouter(prefix="/api/v1", tags=["plant"])


@router.get("/hierarchy", summary="Enterprise, sites, areas, lines, machines (and tags) you may view")
def get_hierarchy(who: Who, rt: Services = Depends(services),
                  tags: bool = Query(True, description="include each machine's tags")) -> JSONResponse:
    return json_response(queries.hierarchy(rt, who, with_tags=tags))


@router.get("/overview", summary="Per site, line and machine: state, OEE today, parts today, top loss")
def get_overview(who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(queries.overview(rt, who))
