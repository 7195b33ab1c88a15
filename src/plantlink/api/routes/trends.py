"""Trend annotations (notes on a machine's trend) and saved trend views."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plantlink.api.params import RowId
from plantlink.api.routes.deps import TimeArg, Who, json_response, optional_time, services, time_range
from plantlink.api.timefmt import parse_time
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/trends", tags=["trends"])


class AnnotationIn(BaseModel):
    machine: str = Field(description="machine path site/area/line/machine")
    text: str = Field(max_length=2000, description="the note (at most 500 characters once trimmed)")
    start: str = Field(description="when (ISO 8601 with offset, or epoch ms)")
    end: str | None = Field(None, description="the end of a span; none for a note at one time")
    tag: str | None = Field(None, description="a tag of the machine the note is about (path or name)")


class ViewIn(BaseModel):
    machine: str
    name: str = Field(max_length=200)
    pens: list[str] = Field(description="tag paths (or names of the machine's tags)", max_length=50)
    span_s: int | None = Field(None, description="relative: the last span_s seconds up to now")
    start: str | None = Field(None, description="absolute: start (with end)")
    end: str | None = None
    shared: bool = Field(False, description="shared with the machine's site (operator or above)")


@router.get("/annotations", summary="Notes on a machine's trend overlapping a range (default: the last 24 h)")
def list_annotations(who: Who, machine: Annotated[str, Query()], rt: Services = Depends(services),
                     start: TimeArg = None, end: TimeArg = None) -> JSONResponse:
    s, e = time_range(start, end, 86400.0)
    return json_response({"items": [a.to_dict() for a in rt.annotations.list(who, machine, s, e)]})


@router.post("/annotations", summary="Add a note on a machine's trend (operator)", status_code=201)
def add_annotation(who: Who, body: Annotated[AnnotationIn, Body()], rt: Services = Depends(services)
                   ) -> JSONResponse:
    a = rt.annotations.add(who, body.machine, body.text, parse_time(body.start, "start"),
                           optional_time(body.end, "end"), body.tag)
    return json_response(a.to_dict(), 201)


@router.delete("/annotations/{annotation_id}", summary="Delete a note (its author, or an admin of the site)")
def delete_annotation(annotation_id: RowId, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(rt.annotations.delete(who, annotation_id).to_dict())


@router.get("/views", summary="The caller's saved trend views and those shared at their sites")
def list_views(who: Who, rt: Services = Depends(services), machine: str | None = None) -> JSONResponse:
    return json_response({"items": [v.to_dict() for v in rt.views.views(who, machine)]})


@router.post("/views", summary="Save a trend view (pens and range) under a name", status_code=201)
def save_view(who: Who, body: Annotated[ViewIn, Body()], rt: Services = Depends(services)) -> JSONResponse:
    v = rt.views.save(who, body.machine, body.name, body.pens, span_s=body.span_s,
                      start_us=optional_time(body.start, "start"), end_us=optional_time(body.end, "end"),
                      shared=body.shared)
    return json_response(v.to_dict(), 201)


@router.get("/views/{view_id}", summary="One saved trend view")
def get_view(view_id: RowId, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(rt.views.view(who, view_id).to_dict())


@router.delete("/views/{view_id}", summary="Delete a saved trend view (its owner, or an admin of the site)")
def delete_view(view_id: RowId, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(rt.views.delete_view(who, view_id).to_dict())
