"""What the write path hands back: a staged write, the outcome of a confirm, the reasons for a refusal."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from plantlink.control.interlock import InterlockStatus, Value
from plantlink.errors import Conflict
from plantlink.identity import WriteRole


class Reason(StrEnum):
    """Why a write was refused (stable codes for clients and the audit trail)."""

    UNKNOWN_TAG = "unknown_tag"
    NOT_WRITABLE = "not_writable"
    ROLE = "role"
    INVALID_VALUE = "invalid_value"
    INVALID_REQUEST = "invalid_request"
    NOT_ALLOWED = "not_allowed"
    LIMIT = "limit"
    STEP = "step"
    CONTROL_DISABLED = "control_disabled"
    DEVICE_DOWN = "device_down"
    STALE_VALUE = "stale_value"
    INTERLOCK = "interlock"
    RATE_LIMIT = "rate_limit"
    UNKNOWN_STAGED = "unknown_staged"
    WRONG_USER = "wrong_user"
    EXPIRED = "expired"
    NEEDS_APPROVAL = "needs_approval"
    SELF_APPROVAL = "self_approval"
    NOT_CRITICAL = "not_critical"
    REJECTED = "rejected"
    COMMAND_CONFLICT = "command_conflict"
    AUDIT_FAILED = "audit_failed"


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason.value, "message": self.message}


#: The HTTP status of a refusal by its reason; any other reason is 409 (the request does not apply now).
REASON_STATUS = {Reason.UNKNOWN_TAG: 404, Reason.UNKNOWN_STAGED: 404, Reason.ROLE: 403, Reason.WRONG_USER: 403,
                 Reason.SELF_APPROVAL: 403, Reason.INVALID_VALUE: 422, Reason.AUDIT_FAILED: 503}


class ControlRefused(Conflict):
    """A control request refused outright (no staged write to show): ``reason`` and ``message``.

    The status follows the reason (``REASON_STATUS``) and the code is the reason's value, except a lack of
    rights, which answers as every other rights check does (403 ``forbidden``, ``field`` ``site``). ``field``
    names the argument at fault; ``code`` overrides the code (an unknown site is ``not_found``)."""

    def __init__(self, reason: Reason, message: str, field: str | None = None, code: str | None = None):
        super().__init__(f"{reason.value}: {message}", "site" if reason == Reason.ROLE else field)
        self.reason, self.message = reason, message
        self.status = REASON_STATUS.get(reason, 409)
        self.code = code or ("forbidden" if reason == Reason.ROLE else reason.value)


def jsonable(v: Value | None) -> Value | None:
    """``v`` with NaN and infinities as None (JSON and the audit trail carry no NaN)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


@dataclass
class Staged:
    """A write selected by ``user``: what would change, the limits and interlocks judged now, and whether it
    may be confirmed (``refusals`` empty) before ``expires_at`` (seconds since the epoch)."""

    id: str
    tag: str
    site: str
    user: str
    current: Value | None
    new: Value
    unit: str
    limits: dict[str, Any]
    role: WriteRole
    critical: bool
    interlocks: list[InterlockStatus]
    created_at: float
    expires_at: float
    refusals: list[Refusal] = field(default_factory=list)
    approved_by: str | None = None
    #: a second person turned the critical write down (it can no longer be approved or confirmed)
    rejected_by: str | None = None
    reject_note: str = ""

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def refusal(self) -> Refusal | None:
        return self.refusals[0] if self.refusals else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "tag": self.tag, "site": self.site, "user": self.user,
            "current": jsonable(self.current), "new": jsonable(self.new), "unit": self.unit,
            "limits": self.limits, "role": self.role, "critical": self.critical,
            "interlocks": [i.to_dict() for i in self.interlocks],
            "created_at": self.created_at, "expires_at": self.expires_at, "ok": self.ok,
            "refusal": self.refusal.to_dict() if self.refusal else None,
            "refusals": [r.to_dict() for r in self.refusals],
            "needs_approval": self.critical and self.approved_by is None, "approved_by": self.approved_by,
            "rejected_by": self.rejected_by, "reject_note": self.reject_note,
        }


Status = Literal["applied", "refused", "failed", "unverified"]


@dataclass(frozen=True)
class Outcome:
    """The result of a confirm: ``applied`` (read back equal), ``unverified`` (sent, the read-back did not show
    it in time), ``failed`` (the device refused or is unreachable) or ``refused`` (not sent: ``reason``)."""

    status: Status
    command_id: str
    staged_id: str
    tag: str
    message: str
    reason: Reason | None = None
    value: Value | None = None
    read_back: Value | None = None
    interlocks: tuple[InterlockStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "command_id": self.command_id, "staged_id": self.staged_id, "tag": self.tag,
            "message": self.message, "reason": self.reason.value if self.reason else None,
            "value": jsonable(self.value), "read_back": jsonable(self.read_back),
            "interlocks": [i.to_dict() for i in self.interlocks],
        }
