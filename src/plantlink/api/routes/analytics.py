"""Machine analytics: anomaly detectors (status, scores, training on a baseline the user picks) and the
remaining useful life estimate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from plantlink.api import queries
from plantlink.api.routes.deps import TimeArg, Who, json_response, optional_time, services, time_range
from plantlink.api.timefmt import iso
from plantlink.services import Services
from plantlink.services.analytics import AnomalyStatus

router = APIRouter(prefix="/api/v1", tags=["analytics"])


class TrainIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: str | int | None = Field(None, alias="from", description="baseline start (ISO 8601 with offset, or epoch "
                                                              "ms); default: the anomaly block's baseline")
    end: str | int | None = Field(None, alias="to", description="baseline end (excluded)")


def _time(value: str | int | None, field: str) -> int | None:
    return optional_time(None if value is None else str(value), field)


def _status(a: AnomalyStatus) -> dict[str, Any]:
    out = a.to_dict()
    b = out.get("baseline")
    if b is not None:
        out["baseline"] = {**b, "from": iso(b["start_us"]), "to": iso(b["end_us"]), "trained": iso(b["trained_us"])}
    if out.get("score_us") is not None:
        out["score_ts"] = iso(out["score_us"])
    return out


@router.get("/anomaly", summary="The machines with an anomaly detector (at the caller's sites)")
def anomaly_machines(who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response({"machines": rt.analytics.anomaly_machines(who)})


@router.get("/anomaly/{machine:path}/scores", summary="The machine's anomaly scores in [start, end)")
def anomaly_scores(machine: str, who: Who, rt: Services = Depends(services), start: TimeArg = None,
                   end: TimeArg = None, limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000) -> JSONResponse:
    a = rt.analytics.anomaly(who, machine)
    s, e = time_range(start, end)
    return json_response(queries.raw_history(rt, who, a.score_tag, s, e, limit))


@router.post("/anomaly/{machine:path}/train", summary="Train the machine's detector on a baseline period "
                                                      "(engineer; audited)")
def anomaly_train(machine: str, who: Who, body: Annotated[TrainIn, Body()], rt: Services = Depends(services)
                  ) -> JSONResponse:
    a = rt.analytics.train(who, machine, _time(body.start, "from"), _time(body.end, "to"))
    return json_response(_status(a))


@router.get("/anomaly/{machine:path}", summary="The machine's detector: mode, baseline, latest score")
def anomaly_status(machine: str, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    return json_response(_status(rt.analytics.anomaly(who, machine)))


@router.get("/rul/{machine:path}", summary="Remaining useful life: hours, band, failure dates in site time")
def rul(machine: str, who: Who, rt: Services = Depends(services)) -> JSONResponse:
    out = rt.analytics.rul(who, machine)
    if out.get("trained_us") is not None:
        out["trained"] = iso(out["trained_us"])
    est = out.get("estimate")
    if est is not None:
        out["estimate"] = {**est, "at": iso(est["at_us"]), "since": iso(est["since_us"])}
    return json_response(out)
