"""The audit trail for admins: records and the hash chain check, with the API's rights rule."""

from __future__ import annotations

from collections.abc import Callable

from plantlink.audit import AuditLog, AuditRecord
from plantlink.audit.log import VerifyResult
from plantlink.identity import ALL_SITES, Principal

__all__ = ["AuditRecord", "AuditTrail", "VerifyResult", "can_read_audit"]


def can_read_audit(who: Principal, site: str | None) -> bool:
    """Admin rights at ``site``, or (no site) at every site."""
    return who.can(site, "admin") if site else who.roles.get(ALL_SITES) == "admin"


class AuditTrail:
    def __init__(self, log: Callable[[], AuditLog | None]):
        self._log = log

    def log(self) -> AuditLog | None:
        return self._log()

    def records(self, who: Principal, *, start_us: int | None = None, end_us: int | None = None,
                actor: str | None = None, kind: str | None = None, site: str | None = None,
                limit: int = 200) -> list[AuditRecord]:
        """The newest matching records; admin rights as the API asks (at ``site``, or at every site)."""
        if not can_read_audit(who, site):
            raise PermissionError("admin rights at the site (or at every site) are needed to read the audit trail")
        log = self._log()
        if log is None:
            return []
        return list(log.query(start_us=start_us, end_us=end_us, actor=actor or None, kind=kind or None,
                              site=site or None, newest_first=True, limit=limit))

    def verify(self, who: Principal) -> VerifyResult | None:
        """The hash chain check (admin at every site); None without an audit log."""
        if not can_read_audit(who, None):
            raise PermissionError("admin rights at every site are needed to check the chain")
        log = self._log()
        return None if log is None else log.verify()

    def record(self, kind: str, actor: str, site: str | None, target: str, details: dict[str, object]) -> None:
        log = self._log()
        if log is not None:
            log.record(kind, actor, site, target, details)
