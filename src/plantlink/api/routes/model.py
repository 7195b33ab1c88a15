"""The running plant model (``plantlink.services.model``, docs/plan-apply.md).

``GET /api/v1/model``: its digest (drift: compare with ``plantlink plan``'s), devices and tags.
``POST /api/v1/model/plan``: ``{"yaml": "...", "file": "plant.yaml"}`` -> the plan (``changes``, ``counts``,
``devices`` restarting, ``history_loss``, both digests) and its ``text``. An invalid model: 400 ``bad_config``
listing every problem (file:line:column).
``POST /api/v1/model/apply``: the same body plus ``allow_history_loss`` and ``expect_digest`` (the running
model's digest the shown plan was made against: 409 when it changed since) -> ``applied``, ``seconds`` and the
plan. A plan with history loss without ``allow_history_loss``: 409 ``conflict``. Engineer at every site.
"""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plantlink.api.routes.deps import Who, json_response, services
from plantlink.model.plan_text import render
from plantlink.services import Services

router = APIRouter(prefix="/api/v1/model", tags=["model"])
#: The largest model text (as the loader reads a file).
MAX_YAML = 16 * 1024 * 1024


class PlanIn(BaseModel):
    yaml: str = Field(max_length=MAX_YAML, description="the new plant model, as its YAML file holds it")
    file: str = Field("plant.yaml", max_length=400, description="its file name (named in errors and the audit)")


class ApplyIn(PlanIn):
    allow_history_loss: bool = False
    expect_digest: str | None = Field(None, max_length=80, description="the digest the plan was made against")


@router.get("", summary="The running plant model's digest, devices and tags")
def current(who: Who, svc: Services = Depends(services)) -> JSONResponse:
    info = svc.model.info()
    return json_response({"digest": info.digest, "file": PurePath(info.file).name, "devices": info.devices,
                          "tags": info.tags})


@router.post("/plan", summary="What applying a changed plant model would change (engineer at every site)")
def plan(body: PlanIn, who: Who, svc: Services = Depends(services)) -> JSONResponse:
    out = svc.model.plan(who, body.yaml, body.file).to_dict()
    return json_response({**out, "text": render(out)})


@router.post("/apply", summary="Apply a changed plant model without a restart (engineer at every site; audited)")
async def apply(body: ApplyIn, who: Who, svc: Services = Depends(services)) -> JSONResponse:
    done = await svc.model.apply(who, body.yaml, body.file, allow_history_loss=body.allow_history_loss,
                                 expect=body.expect_digest)
    out = done.plan.to_dict()
    return json_response({"applied": done.applied, "seconds": round(done.seconds, 3), "plan": out,
                          "text": render(out, allow_history_loss=body.allow_history_loss)})
