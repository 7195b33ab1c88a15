"""Control routes under /api/v1/control: stage, approve and confirm writes; pending writes; the per-site
control switch. The router works through ``services.control`` (``plantlink.api.services``); 503 when the
control path is not running.

Answers: ``stage`` returns the staged write (200) with ``ok`` and its ``refusals`` (each a reason code and
message: the operator sees every reason and every interlock with its value); ``confirm`` returns the outcome
(200) whose ``status`` is ``applied``, ``unverified``, ``failed`` or ``refused`` with a ``reason``, the same
outcome again for a retried ``command_id``. A request that cannot be judged at all gets the JSON error
envelope: 404 (unknown tag or staged write), 403 (rights), 422 (value of the wrong type, a body that does not
validate), 409 (not writable, not critical, ...), 503 (control or audit unavailable).

Every refusal is in the audit trail: the routes check nothing themselves but leave every check (rights
included) to the ``ControlService``, which records what it refuses; a body that does not validate is recorded
by the router's route class (``plantlink.api.audited``) as ``control.<action>_refused`` with reason ``invalid_request``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from plantlink.api.audited import audited_route
from plantlink.api.security import current_principal
from plantlink.api.services import running
from plantlink.control.records import ControlRefused, Outcome, Reason
from plantlink.control.service import MAX_COMMAND_ID
from plantlink.errors import PlantlinkError
from plantlink.identity import Principal
from plantlink.services.control import Control

log = logging.getLogger("plantlink.control")

#: The audit kind of a request refused before the service judged it, by route name.
_REFUSED_KIND = {"stage": "control.stage_refused", "confirm": "control.confirm_refused",
                 "approve": "control.approve_refused", "reject": "control.reject_refused",
                 "disable": "control.site_switch_refused",
                 "enable": "control.site_switch_refused"}


def service(request: Request) -> Control:
    """The control service; 503 when the control path is not running."""
    return running(request, lambda s: s.control if s.control.running else None, "the control path")


def _record_invalid(request: Request, kind: str, who: Principal, message: str, field: str | None) -> None:
    try:
        service(request).refuse(kind, who, Reason.INVALID_REQUEST, message, details={"field": field})
    except PlantlinkError:
        log.warning("a refused %s request by %s could not be recorded", kind, who.name)


router = APIRouter(prefix="/api/v1/control", tags=["control"],
                   route_class=audited_route(_REFUSED_KIND, _record_invalid))
Caller = Annotated[Principal, Depends(current_principal)]
Svc = Annotated[Control, Depends(service)]


class StageBody(BaseModel):
    tag: str = Field(min_length=1, max_length=400, description="full tag path site/area/line/machine/tag")
    value: bool | float | str = Field(description="the new value in engineering units (true/false, number, text)")


class ConfirmBody(BaseModel):
    staged_id: str = Field(min_length=1, max_length=64)
    command_id: str = Field(min_length=1, max_length=MAX_COMMAND_ID,
                            description="chosen by the client; a retry with the same id never writes twice")


class ApproveBody(BaseModel):
    staged_id: str = Field(min_length=1, max_length=64)


class RejectBody(BaseModel):
    staged_id: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=200, description="why, for the requester")


class SwitchBody(BaseModel):
    note: str = Field(default="", max_length=500)


@router.post("/stage", summary="Select a write: current value, limits, interlocks and every reason to refuse")
async def stage(body: StageBody, svc: Svc, who: Caller) -> dict[str, Any]:
    return (await svc.stage(who, body.tag, body.value)).to_dict()


@router.post("/confirm", summary="Operate a staged write (same user, within the timeout); read back and verify")
async def confirm(body: ConfirmBody, svc: Svc, who: Caller) -> dict[str, Any]:
    staged = next((s for s in svc.pending(who) if s.id == body.staged_id), None)
    outcome = await svc.confirm(who, body.staged_id, body.command_id)
    if outcome.status == "refused" and outcome.reason == Reason.ROLE:  # recorded by the service
        raise ControlRefused(Reason.ROLE, outcome.message)
    if staged is None and outcome.reason == Reason.WRONG_USER:
        # someone else's write the caller may not see (another site, or below operator): answer as for an
        # unknown id, without its tag, value or user
        outcome = Outcome("refused", body.command_id, body.staged_id, "",
                          f"no pending staged write {body.staged_id!r} (expired or done)", Reason.UNKNOWN_STAGED)
    return outcome.to_dict()


@router.post("/approve", summary="Second person's approval of a critical staged write")
async def approve(body: ApproveBody, svc: Svc, who: Caller) -> dict[str, Any]:
    return (await svc.approve(who, body.staged_id)).to_dict()


@router.post("/reject", summary="Second person turns a critical staged write down (it can no longer be confirmed)")
async def reject(body: RejectBody, svc: Svc, who: Caller) -> dict[str, Any]:
    return (await svc.reject(who, body.staged_id, body.note)).to_dict()


@router.get("/pending", summary="Staged writes awaiting confirmation or approval at the caller's sites")
async def pending(svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return [s.to_dict() for s in svc.pending(who)]


@router.get("/sites", summary="Whether control is enabled at each site the caller can see")
async def sites(svc: Svc, who: Caller) -> list[dict[str, Any]]:
    return [{"site": s, "control_enabled": on} for s, on in svc.site_switches(who)]


@router.post("/sites/{site}/disable", summary="Admin: refuse every write at the site (kept across restarts)")
async def disable(site: str, svc: Svc, who: Caller, body: SwitchBody | None = None) -> dict[str, Any]:
    return await svc.set_enabled(who, site, False, body.note if body else "")


@router.post("/sites/{site}/enable", summary="Admin: allow writes at the site again")
async def enable(site: str, svc: Svc, who: Caller, body: SwitchBody | None = None) -> dict[str, Any]:
    return await svc.set_enabled(who, site, True, body.note if body else "")
