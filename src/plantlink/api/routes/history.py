"""History of tags: raw samples, aggregated buckets, downsampled trends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api import queries
from plantlink.api.params import db_int
from plantlink.api.routes.deps import TimeArg, Who, duration_us, json_response, services, split_list, time_range
from plantlink.services import Services
from plantlink.services.history import MAX_RAW_POINTS

router = APIRouter(prefix="/api/v1/history", tags=["history"])


@router.get("/raw", summary="Raw samples of one tag in [start, end), columnar; next_start pages on")
def raw(tag: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None,
        limit: Annotated[int, db_int(f"at most {MAX_RAW_POINTS} points")] = 10_000
        ) -> JSONResponse:
    s, e = time_range(start, end)
    return json_response(queries.raw_history(rt, who, tag, s, e, limit))


@router.get("/aggregate", summary="Per tag and interval bucket: min, max, mean, twa, first, last, count")
def aggregate(who: Who, rt: Services = Depends(services),
              tag: Annotated[list[str] | None, Query(description="repeat or comma-separate")] = None,
              start: TimeArg = None, end: TimeArg = None,
              interval: Annotated[str, Query(description="bucket width: 500ms, 60s, 5m, 1h, 1d")] = "1m",
              aggregates: Annotated[str | None, Query(description="comma-separated; default all")] = None
              ) -> JSONResponse:
    s, e = time_range(start, end)
    aggs = split_list([aggregates]) if aggregates else None
    refs: list[str | int] = list(split_list(tag))
    return json_response(queries.aggregate_history(rt, who, refs, s, e, duration_us(interval, "interval"), aggs))


@router.get("/downsample", summary="About n points keeping the shape of the series (MinMaxLTTB), for trends")
def downsample(tag: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None,
               n: Annotated[int, db_int("points wanted, 5..10000")] = 1000) -> JSONResponse:
    s, e = time_range(start, end)
    return json_response(queries.downsample_history(rt, who, tag, s, e, n))
