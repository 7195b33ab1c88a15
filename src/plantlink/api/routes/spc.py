"""Statistical process control: a tag's control chart, run rule violations and capability over a period."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api.routes.deps import TimeArg, Who, json_response, services, split_list, time_range
from plantlink.api.timefmt import iso, iso_many, ms_many
from plantlink.services import Services
from plantlink.services.spc import CHARTS, SpcChart

router = APIRouter(prefix="/api/v1/spc", tags=["spc"])


@router.get("/{ref:path}", summary="Control chart of a tag over [start, end): limits, points, violations, "
                                   "capability")
def spc_chart(ref: str, who: Who, rt: Services = Depends(services), start: TimeArg = None, end: TimeArg = None,
              chart: Annotated[str | None, Query(description=f"override the tag's chart: {', '.join(CHARTS)}")]
              = None,
              n: Annotated[int | None, Query(ge=2, le=25, description="subgroup size (X-bar charts): every n "
                                                                       "samples")] = None,
              rules: Annotated[str | None, Query(description="comma-separated rules or groups; empty for none")]
              = None,
              capability: Annotated[bool | None, Query(description="true: required (400 without spec limits); "
                                                                   "false: skip; default: when the tag has limits")]
              = None) -> JSONResponse:
    s, e = time_range(start, end, 86400.0)
    names = None if rules is None else split_list([rules])
    found = rt.spc.chart(who, ref, s, e, chart=chart, subgroup_size=n, rules=names, with_capability=capability)
    return json_response(encode(found))


def _floats(a: Any) -> list[float | None]:
    arr = np.asarray(a, dtype=np.float64)
    out: list[float | None] = arr.tolist()
    for i in np.flatnonzero(~np.isfinite(arr)).tolist():
        out[i] = None
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def encode(c: SpcChart) -> dict[str, Any]:
    st = c.settings
    cap = None
    if c.capability is not None:
        cap = {k: _num(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(c.capability).items()}
    return {
        "tag": c.tag.path, "id": c.tag_id, "unit": c.tag.tag.unit, "chart": c.kind,
        "start": iso(c.start_us), "end": iso(c.end_us), "samples": c.samples,
        "points": int(c.ts_us.size), "ts": iso_many(c.ts_us), "ts_ms": ms_many(c.ts_us),
        "sizes": c.charts.sizes.tolist(), "sigma_within": _num(c.charts.sigma_within),
        "spec": {"lsl": st.lsl, "usl": st.usl, "target": st.target}, "rules": list(c.rules),
        "charts": [{"name": ch.name, "offset": ch.offset, "values": _floats(ch.values), "center": _floats(ch.center),
                    "lcl": _floats(ch.lcl), "ucl": _floats(ch.ucl)} for ch in c.charts.charts],
        "violations": [{"chart": v.chart, "rule": v.rule, "point": v.point, "ts": iso(v.ts_us),
                        "ts_ms": v.ts_us // 1000, "value": _num(v.value)} for v in c.violations],
        "capability": cap,
    }
