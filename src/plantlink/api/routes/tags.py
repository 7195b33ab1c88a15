"""Tags and their latest values: /api/v1/tags, /api/v1/tags/{path or id}, /api/v1/values."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api import queries
from plantlink.api.routes.deps import DEFAULT_LIMIT, Limit, Offset, Who, json_response, services, split_list
from plantlink.services import Services

router = APIRouter(prefix="/api/v1", tags=["tags"])


@router.get("/tags", summary="A page of the tags you may view (optionally under a path prefix)")
def list_tags(who: Who, rt: Services = Depends(services), prefix: str | None = None, limit: Limit = DEFAULT_LIMIT,
              offset: Offset = 0) -> JSONResponse:
    return json_response(queries.tags(rt, who, prefix=prefix, limit=limit, offset=offset))


@router.get("/tags/{ref:path}", summary="One tag by path (site/area/line/machine/tag) or numeric id")
def get_tag(ref: str, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(queries.tag(rt, who, ref))


@router.get("/values", summary="Latest value, quality and time of tags (by path or id; up to 1000)")
def get_values(who: Who, rt: Services = Depends(services),
               tag: Annotated[list[str] | None, Query(description="repeat or comma-separate")] = None
               ) -> JSONResponse:
    refs: list[str | int] = list(split_list(tag))
    return json_response({"values": queries.latest(rt, who, refs)})
