"""Control as the HMI and the API use it: the setpoints of a machine, interlocks judged now, stage / confirm /
approve, pending writes, the per-site switch (rights, checks and the audit trail are the ``ControlService``'s)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plantlink.control.interlock import Interlock, InterlockStatus
from plantlink.control.records import ControlRefused, Outcome, Reason, Staged
from plantlink.identity import Caller, Principal
from plantlink.services.plant import PlantIndex

if TYPE_CHECKING:
    from plantlink.control.service import ControlService
    from plantlink.model.control import WriteSpec

__all__ = ["Control", "ControlRefused", "InterlockStatus", "Outcome", "Setpoint", "Staged"]


@dataclass(frozen=True)
class Setpoint:
    """A writable tag with a ``control:`` section, as the setpoint panel shows it."""

    path: str
    name: str
    unit: str
    type: str
    spec: WriteSpec
    site: str


class Control:
    def __init__(self, index: PlantIndex, service: Callable[[], ControlService | None]):
        self.index, self._service = index, service

    @property
    def running(self) -> bool:
        return self._service() is not None

    def service(self) -> ControlService:
        svc = self._service()
        if svc is None:
            raise ControlRefused(Reason.AUDIT_FAILED, "the control path is not running")
        return svc

    def setpoints(self, machine: str) -> list[Setpoint]:
        m = self.index.machines[machine]
        return [Setpoint(f"{m.path}/{t.name}", t.name, t.unit, t.type, t.control, m.site)
                for t in m.model.tags if t.writable and t.control is not None]

    def interlocks_now(self, sp: Setpoint) -> list[InterlockStatus]:
        """Each interlock of the tag judged on the live values now (what staging would find)."""
        svc = self.service()
        machine = sp.path.rsplit("/", 1)[0]
        locks = [Interlock.compile(e, machine) for e in sp.spec.interlocks]
        paths = list(dict.fromkeys(p for lk in locks for p in lk.paths))
        readings = svc.live.read(paths) if paths else {}
        return [lk.evaluate(readings) for lk in locks]

    async def stage(self, who: Principal, path: str, value: Any) -> Staged:
        """Select a write (ControlRefused when there is nothing to show, e.g. no rights: the control service
        checks the rights and records every refusal in the audit trail); the record is written off the event
        loop, and the staged write kept once it is."""
        return await self.service().stage_async(who, path, value)

    async def approve(self, who: Principal, staged_id: str) -> Staged:
        """A second person's approval of a critical staged write, recorded off the event loop first."""
        return await self.service().approve_async(who, staged_id)

    async def reject(self, who: Principal, staged_id: str, note: str = "") -> Staged:
        """A second person turns a critical staged write down, recorded off the event loop first."""
        return await self.service().reject_async(who, staged_id, note)

    def mine(self, who: Caller, staged_id: str) -> Staged | None:
        """``who``'s own pending staged write as it stands now (approved, rejected), None when gone."""
        svc = self._service()
        return None if svc is None else svc.mine(who, staged_id)

    async def confirm(self, who: Principal, staged_id: str, command_id: str | None = None) -> Outcome:
        """Operate a staged write once: a retry with the same ``command_id`` never writes twice (default: a new
        command id per confirm)."""
        return await self.service().confirm(who, staged_id, command_id or uuid.uuid4().hex)

    def pending(self, who: Caller) -> list[Staged]:
        """Staged writes awaiting confirmation or approval at the sites where ``who`` is at least an operator."""
        return self.service().pending(who)

    def site_switches(self, who: Caller) -> list[tuple[str, bool]]:
        """(site, control enabled) for each site ``who`` can see."""
        svc = self.service()
        return [(s, not svc.disabled(s)) for s in self.index.sites if who.can(s, "viewer")]

    async def set_enabled(self, who: Caller, site: str, enabled: bool, note: str = "") -> dict[str, Any]:
        """Admin: allow or refuse every write at ``site`` (kept across restarts, audited off the event loop)."""
        return await self.service().set_enabled_async(who, site, enabled, note)

    def refuse(self, kind: str, who: Caller, reason: Reason, message: str, details: dict[str, Any]) -> None:
        """Record a request refused before the control path judged it (a body that does not validate)."""
        self.service().refuse(kind, who, reason, message, target=None, details=details)

    def approvals(self, who: Caller, machine: str | None = None) -> list[Staged]:
        """Critical staged writes awaiting a second person that ``who`` may approve or reject: of one machine,
        or (``machine`` None) of the whole plant, oldest first."""
        svc = self._service()
        if svc is None:
            return []
        latest: dict[tuple[str, str], Staged] = {}  # a newer stage by the same user of the same tag supersedes
        for s in svc.pending(who):
            if s.critical and (machine is None or s.tag.rsplit("/", 1)[0] == machine):
                have = latest.get((s.user, s.tag))
                if have is None or s.created_at >= have.created_at:
                    latest[(s.user, s.tag)] = s
        waiting = [s for s in latest.values() if s.approved_by is None and s.rejected_by is None
                   and s.user != who.name and who.can(s.site, s.role)]
        return sorted(waiting, key=lambda s: s.created_at)
