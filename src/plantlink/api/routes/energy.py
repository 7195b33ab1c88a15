"""Energy of a machine, line, area or site over a range: kWh, kWh per good part, idle energy and its cost."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api import energy as encode
from plantlink.api.routes.deps import TimeArg, Who, json_response, services, time_range
from plantlink.errors import QueryError
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/energy", tags=["energy"])
Scope = Annotated[str, Query(description="site, site/area, site/area/line or site/area/line/machine")]


@router.get("", summary="Energy over [start, end) (default: the last 24 h); by=shift adds each shift")
def get_energy(scope: Scope, who: Who, rt: Services = Depends(services), start: TimeArg = None,
               end: TimeArg = None,
               by: Annotated[str | None, Query(description="shift: the figures of each shift too")] = None
               ) -> JSONResponse:
    if by not in (None, "shift"):
        raise QueryError(f"by must be 'shift' (or left out), got {by!r}", field="by")
    s, e = time_range(start, end, 86400.0)
    return json_response(encode.energy(rt, who, scope, s, e, by_shift=by == "shift"))
