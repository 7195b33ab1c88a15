"""The running plant model: its digest (drift), a plan of a changed model against it, and its apply.

``plan`` and ``apply`` take the new model's YAML text; it is validated whole first (``ConfigError`` listing
every problem: nothing changes). They need the engineer role at every site of the running and of the new
model. ``apply`` refuses a plan that leaves tags with samples unreachable (``history_loss``) unless
``allow_history_loss``; it is audited (``model.apply``, with the plan's changes) before anything changes, and
its outcome after (``model.apply_failed`` when it failed: the old model keeps running).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from plantlink.errors import AccessDenied, Conflict, Unavailable
from plantlink.model import Plant, parse_plant
from plantlink.model.diff import Plan

if TYPE_CHECKING:
    from plantlink.audit.sink import AuditSink
    from plantlink.identity import Caller, Role

#: The role that plans and applies a model (at every site of both models).
MODEL_ROLE: Role = "engineer"


class ModelAdmin(Protocol):
    """What the service needs of the runtime (``plantlink.reload.ModelApplier``)."""

    @property
    def plant(self) -> Plant: ...

    def digest(self) -> str: ...

    def plan(self, new: Plant) -> Plan: ...

    async def apply(self, new: Plant, plan: Plan) -> None: ...


@dataclass(frozen=True)
class ModelInfo:
    digest: str
    file: str
    devices: int
    tags: int


@dataclass(frozen=True)
class Applied:
    plan: Plan
    #: False when the plan was empty (nothing to do).
    applied: bool
    seconds: float


class ModelService:
    def __init__(self, admin: Callable[[], ModelAdmin | None], audit: Callable[[], AuditSink | None]):
        self._admin = admin
        self._audit = audit

    @property
    def running(self) -> bool:
        """A model runs here that can be planned against and applied to (not in ``plantlink serve``)."""
        return self._admin() is not None

    def _running(self) -> ModelAdmin:
        admin = self._admin()
        if admin is None:
            raise Unavailable("the plant model cannot be changed here: no runtime")
        return admin

    def info(self) -> ModelInfo:
        admin = self._running()
        p = admin.plant
        return ModelInfo(admin.digest(), p.file, len(p.devices), len(p.tags))

    def _check(self, who: Caller, admin: ModelAdmin, new: Plant) -> None:
        sites = sorted({s.name for s in admin.plant.sites} | {s.name for s in new.sites})
        denied = [s for s in sites if not who.can(s, MODEL_ROLE)]
        if denied:
            raise AccessDenied(f"changing the plant model needs the {MODEL_ROLE} role at every site it covers; "
                               f"not at: {', '.join(denied)}")

    def plan(self, who: Caller, text: str, file: str = "<plant>") -> Plan:
        """The plan of the model ``text`` against the running one (``ConfigError`` when it is not valid)."""
        admin = self._running()
        new = parse_plant(text, file)
        self._check(who, admin, new)
        return admin.plan(new)

    async def apply(self, who: Caller, text: str, file: str = "<plant>", *, allow_history_loss: bool = False,
                    expect: str | None = None) -> Applied:
        """Validate, plan, audit and apply the model ``text``. ``expect``: the digest the plan shown to the
        user was made against (``Conflict`` when the running model changed since)."""
        t0 = time.perf_counter()
        admin = self._running()
        # off the event loop: a big model takes a while to validate, and the connectors must keep reading
        new = await asyncio.to_thread(parse_plant, text, file)
        self._check(who, admin, new)
        plan = await asyncio.to_thread(admin.plan, new)
        if expect is not None and expect != plan.digest_before:
            raise Conflict(f"the running model is {plan.digest_before}, not {expect}: plan again")
        if plan.history_loss and not allow_history_loss:
            raise Conflict(f"this model leaves {len(plan.history_loss)} tag(s) with samples unreachable "
                           f"({', '.join(plan.history_loss[:5])}); apply with allow_history_loss "
                           "(--allow-history-loss), or keep their history with was:")
        if plan.empty:
            return Applied(plan, False, time.perf_counter() - t0)
        audit = self._audit()
        if audit is None:
            raise Unavailable("the audit log is not running: a model change must be audited")
        details = _details(plan, allow_history_loss)
        audit.record("model.apply", who.name, target=file, details=details)
        try:
            await admin.apply(new, plan)
        except Exception as exc:
            audit.record("model.apply_failed", who.name, target=file,
                         details={"digest_after": plan.digest_after, "error": f"{type(exc).__name__}: {exc}"[:500]})
            raise
        return Applied(plan, True, time.perf_counter() - t0)


def _details(plan: Plan, allow_history_loss: bool) -> dict[str, Any]:
    out = plan.to_dict()
    out["allow_history_loss"] = allow_history_loss
    return out
