"""Exports of what the pages show, streamed: a trend's raw samples (CSV, Parquet, an Arrow IPC stream), OEE and
energy tables, downtime lists and Paretos (CSV, XLSX) over a range (``plantlink.services.export``).

Who may export: whoever may view the same figures (viewers of the site); a user of another site is refused as
by the reads. ``dry_run=true`` answers the size instead of the file (rows, exact or estimated, and bytes,
estimated), so that a page can say it before the download starts; an XLSX longer than a sheet is refused (400,
``format``) before any row is read. Every export is audited (``export.<kind>``: who, what, range, format, rows
sent and whether it went to the end) once its stream ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse

from plantlink.api.exportfmt import MEDIA, Counter, encode
from plantlink.api.routes.deps import TimeArg, Who, json_response, services, split_list, time_range
from plantlink.api.timefmt import stamp
from plantlink.identity import Principal
from plantlink.services import Services
from plantlink.services import export as ex

router = APIRouter(prefix="/api/v1/export", tags=["export"])

Format = Annotated[str, Query(description="csv, parquet or arrow (trend: an Arrow IPC stream, times as "
                                          "timestamps), or xlsx (tables)")]
DryRun = Annotated[bool, Query(description="answer the size (rows, bytes) as JSON instead of the file")]
Tags = Annotated[list[str] | None, Query(description="tag paths or ids; repeat or comma-separate")]


def _answer(rt: Services, who: Principal, export: ex.Export, fmt: str, dry_run: bool
            ) -> JSONResponse | StreamingResponse:
    ex.check_format(export.kind, fmt, export.rows)
    name = ex.filename(export, fmt)
    size = ex.estimate_bytes(export, fmt)
    if dry_run:
        return json_response(_size(export, fmt, name, size))
    counter = Counter()

    def body() -> Iterator[bytes]:
        complete = False
        try:
            schema, batches = export.stream(fmt)
            yield from encode(fmt, counter(batches), schema)
            complete = True
        finally:
            ex.record(rt, who, export, fmt, counter.rows, complete)

    headers = {"content-disposition": f'attachment; filename="{name}"', "x-content-type-options": "nosniff",
               "cache-control": "no-store", "x-export-rows": str(export.rows),
               "x-export-bytes-estimate": str(size)}
    return StreamingResponse(body(), media_type=MEDIA[fmt], headers=headers)


def _size(export: ex.Export, fmt: str, name: str, size: int) -> dict[str, Any]:
    return {"kind": export.kind, "format": fmt, "scope": export.scope, "site": export.site,
            "timezone": export.timezone, **stamp(export.start_us, "start"), **stamp(export.end_us, "end"),
            "rows": export.rows, "rows_exact": export.exact, "bytes_estimate": size, "filename": name,
            "confirm": ex.needs_confirm(export, fmt)}


@router.get("/trend", summary="Raw samples of tags of one site in [start, end): CSV, Parquet or Arrow, streamed",
            response_model=None)
def trend(who: Who, rt: Services = Depends(services), tag: Tags = None, start: TimeArg = None, end: TimeArg = None,
          format: Format = "csv", dry_run: DryRun = False) -> JSONResponse | StreamingResponse:
    s, e = time_range(start, end)
    refs: list[str | int] = list(split_list(tag))
    return _answer(rt, who, ex.trend(rt, who, refs, s, e), format, dry_run)


@router.get("/oee", summary="OEE by machine, shift or day of a scope over [start, end): CSV or XLSX",
            response_model=None)
def oee(scope: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None,
        by: Annotated[str, Query(description="machine, shift or day")] = "machine", format: Format = "csv",
        dry_run: DryRun = False) -> JSONResponse | StreamingResponse:
    s, e = time_range(start, end, 86400.0)
    return _answer(rt, who, ex.oee(rt, who, scope, s, e, by), format, dry_run)


@router.get("/energy", summary="Energy by machine or shift of a scope over [start, end): CSV or XLSX",
            response_model=None)
def energy(scope: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None,
           by: Annotated[str, Query(description="machine or shift")] = "machine", format: Format = "csv",
           dry_run: DryRun = False) -> JSONResponse | StreamingResponse:
    s, e = time_range(start, end, 86400.0)
    return _answer(rt, who, ex.energy(rt, who, scope, s, e, by), format, dry_run)


@router.get("/downtime", summary="Downtime events of a site, line or machine in [start, end): CSV or XLSX",
            response_model=None)
def downtime(who: Who, rt: Services = Depends(services), site: str | None = None, line: str | None = None,
             machine: str | None = None, start: TimeArg = None, end: TimeArg = None, format: Format = "csv",
             dry_run: DryRun = False) -> JSONResponse | StreamingResponse:
    s, e = time_range(start, end, 86400.0)
    return _answer(rt, who, ex.downtime(rt, who, s, e, site=site, line=line, machine=machine), format, dry_run)


@router.get("/pareto", summary="Lost time by reason, machine or shift on a line or site: CSV or XLSX",
            response_model=None)
def pareto(who: Who, rt: Services = Depends(services),
           by: Annotated[str, Query(description="reason, machine or shift")] = "reason",
           line: str | None = None, site: str | None = None, start: TimeArg = None, end: TimeArg = None,
           format: Format = "csv", dry_run: DryRun = False) -> JSONResponse | StreamingResponse:
    s, e = time_range(start, end, 86400.0)
    return _answer(rt, who, ex.pareto(rt, who, by, s, e, line=line, site=site), format, dry_run)
