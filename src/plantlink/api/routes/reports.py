"""Reports of a site, area, line or machine over a shift, a day, a week or a range, as HTML or PDF
(``services.reports`` assembles, ``plantlink.reports`` renders). Whoever may view the figures may download
the report; every report is audited (``export.report``), as the other exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from plantlink.api.routes.deps import TimeArg, Who, optional_time, services
from plantlink.services import Services
from plantlink.services.reports import audit_details

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get("", summary="A report (OEE, losses in money, Pareto, alarms, SPC, energy, machines at risk): HTML or PDF",
            response_model=None)
def report(scope: Annotated[str, Query(description="site, site/area, site/area/line or site/area/line/machine")],
           who: Who, rt: Services = Depends(services),
           period: Annotated[str | None, Query(description="shift, day or week: the last one ended (at `at`); "
                                                           "or give start and end")] = None,
           start: TimeArg = None, end: TimeArg = None,
           at: Annotated[str | None, Query(description="the periods ended by then (default: now)")] = None,
           format: Annotated[str, Query(description="html or pdf")] = "html") -> Response:
    from plantlink.reports import MEDIA, check_format, filename, render

    check_format(format)
    found = rt.reports.report(who, scope, period, start_us=optional_time(start, "start"),
                              end_us=optional_time(end, "end"), at_us=optional_time(at, "at"))
    body = render(found, format)
    rt.audit.record("export.report", who.name, found.site, found.scope, audit_details(found, format, len(body), "api"))
    headers = {"content-disposition": f'attachment; filename="{filename(found, format)}"',
               "x-content-type-options": "nosniff", "cache-control": "no-store",
               "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}
    return Response(body, media_type=MEDIA[format], headers=headers)
