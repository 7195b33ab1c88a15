"""The safe write path: stage (select), approve (two-person rule), confirm (operate), verify (read back).

Every check runs at stage AND again at confirm, just before the write: role, control enabled at the site,
allowed values, limits, step from the current value, device connected, current value fresh, interlocks,
rate limit. A confirm names a ``command_id``: a retried confirm with the same id returns the first result
and never writes twice. Every stage, approval, confirm attempt and result goes to the audit sink; a write
whose attempt cannot be audited is refused.

Staged writes live in memory for ``confirm_timeout`` seconds (a restart drops them: nothing is pending after
it). The per-site control-disabled switch is kept in the relational store when there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from plantlink.audit.sink import AuditSink
from plantlink.connectors.base import Point
from plantlink.control.check import control_problems
from plantlink.control.interlock import Interlock, InterlockStatus, Value
from plantlink.control.live import LiveReader
from plantlink.control.records import ControlRefused, Outcome, Reason, Refusal, Staged, jsonable
from plantlink.control.values import asked, coerce, limits_of, same_value, step_refusal, value_refusals
from plantlink.control.wiring import ControlWiring
from plantlink.errors import ConfigError, ConfigProblem, ConnectorError, DeviceUnavailable
from plantlink.identity import Caller
from plantlink.model.control import WriteSpec
from plantlink.model.plant import TagInfo

log = logging.getLogger("plantlink.control")

_META_KEY = "control.disabled.{site}"
MAX_COMMAND_ID = 100
MAX_NOTE = 200  # a rejection's note


class ControlService:
    """Stage, approve and confirm writes to the writable tags of the wiring's plant (``ControlWiring``: the
    plant, the tag ids, the latest values, the connectors and the store of the site switches; not the runtime).

    ``clock`` gives seconds since the epoch (injected in tests); ``stale_factor`` poll periods (plus the
    device's timeout) is the oldest acceptable age of a polled value; ``max_age`` bounds the age of every value
    when set.
    """

    def __init__(self, wiring: ControlWiring, audit: AuditSink, *, clock: Callable[[], float] = time.time,
                 confirm_timeout: float = 30.0, stale_factor: float = 3.0, max_age: float | None = None,
                 poll_interval: float = 0.05, history: int = 10_000):
        problems = control_problems(wiring.plant.spec)
        if problems:
            file = wiring.plant.file
            raise ConfigError([ConfigProblem(file, None, None, ".".join(map(str, loc)), msg) for loc, msg in problems])
        self.wiring, self.plant, self.audit, self.clock = wiring, wiring.plant, audit, clock
        self.confirm_timeout, self.poll_interval, self.history = confirm_timeout, poll_interval, history
        self.live = LiveReader(wiring, clock, stale_factor, max_age)
        self._interlocks = {
            t.path: [Interlock.compile(e, t.path.rsplit("/", 1)[0]) for e in t.tag.control.interlocks]
            for t in wiring.plant.tags if t.tag.control is not None
        }
        self._pending: dict[str, Staged] = {}
        self._commands: OrderedDict[str, tuple[str, str, asyncio.Task[Outcome]]] = OrderedDict()
        self._last_write: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._audit_order = asyncio.Lock()
        self._disabled = {s.name: self._load_disabled(s.name) for s in wiring.plant.sites}

    # ------------------------------------------------------------------ site switch

    def _load_disabled(self, site: str) -> bool:
        store = self.wiring.meta()
        return bool(store.get_meta(_META_KEY.format(site=site))) if store is not None else False

    def disabled(self, site: str) -> bool:
        return self._disabled.get(site, False)

    def set_enabled(self, actor: Caller, site: str, enabled: bool, note: str = "") -> dict[str, Any]:
        """Admin only: switch writes at ``site`` on or off (kept in the store, audited, refusals too)."""
        details = self._switchable(actor, site, enabled, note)
        self._audit("control.site_enabled" if enabled else "control.site_disabled", actor.name, site, None, details)
        self._disabled[site] = not enabled
        self._keep_switch(site, enabled)
        return {"site": site, "control_enabled": enabled}

    async def set_enabled_async(self, actor: Caller, site: str, enabled: bool, note: str = "") -> dict[str, Any]:
        """``set_enabled``, its record and the kept switch written off the event loop (switched once recorded)."""
        details = self._switchable(actor, site, enabled, note)
        await self._audit_off("control.site_enabled" if enabled else "control.site_disabled", actor.name, site,
                              None, details)
        self._disabled[site] = not enabled
        await asyncio.to_thread(self._keep_switch, site, enabled)
        return {"site": site, "control_enabled": enabled}

    def _switchable(self, actor: Caller, site: str, enabled: bool, note: str) -> dict[str, Any]:
        """The details to record of a switch ``actor`` may make (ControlRefused, recorded, otherwise)."""
        if site not in self._disabled:
            raise self.refuse("control.site_switch_refused", actor, Reason.UNKNOWN_TAG,
                              f"no site {site[:100]!r} (sites: {', '.join(self._disabled)})",
                              details={"site": site[:100], "enabled": enabled}, field="site", code="not_found")
        if not actor.can(site, "admin"):
            raise self.refuse("control.site_switch_refused", actor, Reason.ROLE,
                              f"admin rights at site {site!r} are needed", site, details={"enabled": enabled})
        return {"note": note, "was_enabled": not self._disabled[site]}

    def _keep_switch(self, site: str, enabled: bool) -> None:
        store = self.wiring.meta()
        if store is not None:
            store.set_meta(_META_KEY.format(site=site), 0 if enabled else 1)

    # ------------------------------------------------------------------ stage

    def stage(self, actor: Caller, tag_path: str, value: Any) -> Staged:
        """Select a write: judge it now; keep it for ``confirm`` when nothing refuses it.

        Raises ControlRefused when there is nothing to show (unknown tag, no rights at the site, below the
        tag's role, tag not writable, value of the wrong type), after recording ``control.stage_refused``;
        otherwise returns the Staged with its ``refusals`` (empty = ok), recorded as ``control.stage``.
        """
        staged = self._selected(actor, tag_path, value)
        self._audit("control.stage", actor.name, staged.site, staged.tag, _stage_details(staged))
        return self._keep(staged)

    async def stage_async(self, actor: Caller, tag_path: str, value: Any) -> Staged:
        """``stage``, its record written off the event loop (kept for ``confirm`` only once recorded)."""
        staged = self._selected(actor, tag_path, value)
        await self._audit_off("control.stage", actor.name, staged.site, staged.tag, _stage_details(staged))
        return self._keep(staged)

    def _selected(self, actor: Caller, tag_path: str, value: Any) -> Staged:
        info = self._tag(actor, tag_path, value)
        spec = info.tag.control
        new = self._coerce(actor, info, value)
        assert spec is not None
        now = self.clock()
        current, statuses, refusals = self._judge(actor, info, spec, new, now)
        return Staged(
            id=uuid.uuid4().hex, tag=info.path, site=info.site, user=actor.name, current=current, new=new,
            unit=info.tag.unit, limits=limits_of(spec), role=spec.role, critical=spec.critical, interlocks=statuses,
            created_at=now, expires_at=now + self.confirm_timeout, refusals=refusals,
        )

    def _keep(self, staged: Staged) -> Staged:
        self._purge(staged.created_at)
        if staged.ok:
            self._pending[staged.id] = staged
        return staged

    def pending(self, actor: Caller) -> list[Staged]:
        """Staged writes not yet confirmed or expired, at the sites where ``actor`` is at least an operator."""
        self._purge(self.clock())
        return [s for s in self._pending.values() if actor.can(s.site, "operator")]

    def approve(self, actor: Caller, staged_id: str) -> Staged:
        """Second person's approval of a critical staged write (someone else, with the tag's role).

        A staged write the actor may not see (another site, below operator) is refused as unknown, and
        recorded with the real reason."""
        staged, details = self._approvable(actor, staged_id)
        self._audit("control.approve", actor.name, staged.site, staged.tag, details)
        staged.approved_by = actor.name
        return staged

    async def reject_async(self, actor: Caller, staged_id: str, note: str = "") -> Staged:
        """A second person turns a critical staged write down (the rules of ``approve``), recorded off the event
        loop first; the requester sees who and why, and the write can no longer be approved or confirmed."""
        staged, details = self._approvable(actor, staged_id, "control.reject_refused")
        note = note.strip()[:MAX_NOTE]
        await self._audit_off("control.reject", actor.name, staged.site, staged.tag, {**details, "note": note})
        staged.rejected_by, staged.reject_note = actor.name, note
        return staged

    def mine(self, actor: Caller, staged_id: str) -> Staged | None:
        """``actor``'s own pending staged write (to follow its approval), None when gone or another's."""
        staged = self._pending.get(staged_id)
        return staged if staged is not None and staged.user == actor.name else None

    def _approvable(self, actor: Caller, staged_id: str, refused_kind: str = "control.approve_refused",
                    ) -> tuple[Staged, dict[str, Any]]:
        """The staged write ``actor`` may approve or reject and the details to record (ControlRefused, audited
        as ``refused_kind``, otherwise)."""
        staged = self._pending.get(staged_id)
        if staged is None or self.clock() > staged.expires_at or not actor.can(staged.site, "operator"):
            why = Reason.ROLE if staged is not None and self.clock() <= staged.expires_at else Reason.UNKNOWN_STAGED
            self.refuse(refused_kind, actor, why, f"no pending staged write {staged_id[:64]!r}",
                        staged.site if staged else None, staged.tag if staged else None,
                        {"staged_id": staged_id[:64]})
            raise ControlRefused(Reason.UNKNOWN_STAGED, f"no pending staged write {staged_id!r} (expired or done)",
                                 "staged_id")
        why_not: Refusal | None = None
        if not actor.can(staged.site, staged.role):
            why_not = Refusal(Reason.ROLE, f"{staged.role} rights at site {staged.site!r} are needed to approve")
        elif actor.name == staged.user:
            why_not = Refusal(Reason.SELF_APPROVAL, "a critical write needs a second, different person")
        elif not staged.critical:
            why_not = Refusal(Reason.NOT_CRITICAL, "this write needs no approval: only critical tags do")
        elif staged.rejected_by is not None:
            why_not = Refusal(Reason.REJECTED, f"{staged.rejected_by} rejected this write already")
        elif staged.approved_by is not None:
            why_not = Refusal(Reason.NOT_CRITICAL, f"{staged.approved_by} approved this write already")
        details = {"staged_id": staged_id, "value": jsonable(staged.new)}
        if why_not is not None:
            raise self.refuse(refused_kind, actor, why_not.reason, why_not.message, staged.site,
                              staged.tag, details, field="staged_id")
        return staged, details

    async def approve_async(self, actor: Caller, staged_id: str) -> Staged:
        """``approve``, its record written off the event loop (approved only once recorded)."""
        staged, details = self._approvable(actor, staged_id)
        await self._audit_off("control.approve", actor.name, staged.site, staged.tag, details)
        staged.approved_by = actor.name
        return staged

    # ------------------------------------------------------------------ confirm

    async def confirm(self, actor: Caller, staged_id: str, command_id: str) -> Outcome:
        """Operate a staged write once. The same ``command_id`` again returns the first result."""
        if not command_id or len(command_id) > MAX_COMMAND_ID:
            raise self.refuse("control.confirm_refused", actor, Reason.INVALID_VALUE,
                              f"command_id must be 1 to {MAX_COMMAND_ID} characters",
                              details={"staged_id": staged_id[:64], "command_id": command_id[:MAX_COMMAND_ID]},
                              field="command_id")
        known = self._commands.get(command_id)
        details = {"staged_id": staged_id, "command_id": command_id, "retry": known is not None}
        if known is None:  # claimed now: a twin request arriving while the record is written is a retry
            recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._confirm(actor, staged_id, command_id, recorded),
                                       name=f"control-{command_id}")
            self._commands[command_id] = (staged_id, actor.name, task)
            while len(self._commands) > self.history:
                self._commands.popitem(last=False)
            try:
                await self._audit_off("control.confirm", actor.name, None, None, details)
            except BaseException as exc:  # not recorded: nothing is written, and the id may be used again
                self._commands.pop(command_id, None)
                recorded.set_exception(exc)
                task.add_done_callback(_consume)
                raise
            recorded.set_result(None)
            return await asyncio.shield(task)  # a dropped request does not cancel a write under way
        await self._audit_off("control.confirm", actor.name, None, None, details)
        sid, user, task = known
        if (sid, user) != (staged_id, actor.name):
            out = Outcome("refused", command_id, staged_id, "", "this command id was used for another "
                          "staged write or by another user", Reason.COMMAND_CONFLICT)
            await self._audit_off("control.result", actor.name, None, None, _out(out))
            return out
        return await asyncio.shield(task)

    async def _confirm(self, actor: Caller, staged_id: str, command_id: str, recorded: asyncio.Future[None]
                       ) -> Outcome:
        await recorded  # the confirm is in the audit trail first
        staged = self._pending.get(staged_id)

        async def refused(reason: Reason, message: str, statuses: tuple[InterlockStatus, ...] = ()) -> Outcome:
            tag = staged.tag if staged else ""
            out = Outcome("refused", command_id, staged_id, tag, message, reason,
                          staged.new if staged else None, interlocks=statuses)
            await self._audit_off("control.result", actor.name, staged.site if staged else None, tag or None,
                                  _out(out))
            return out

        if staged is None:
            return await refused(Reason.UNKNOWN_STAGED, f"no pending staged write {staged_id!r} (expired or done)")
        if staged.user != actor.name:
            return await refused(Reason.WRONG_USER, f"only {staged.user} who staged this write may confirm it")
        if self.clock() > staged.expires_at:
            self._pending.pop(staged_id, None)
            return await refused(Reason.EXPIRED, f"confirm within {self.confirm_timeout:g} s of staging; stage again")
        if staged.rejected_by is not None:
            self._pending.pop(staged_id, None)
            return await refused(Reason.REJECTED, f"{staged.rejected_by} rejected this write"
                                 + (f": {staged.reject_note}" if staged.reject_note else ""))
        if staged.critical and staged.approved_by is None:
            return await refused(Reason.NEEDS_APPROVAL, "a critical write needs a second person's approval first")
        self._pending.pop(staged_id, None)  # one operate per select, whatever happens next
        async with self._locks.setdefault(staged.tag, asyncio.Lock()):
            info = self.plant.tag(staged.tag)
            spec = info.tag.control
            assert spec is not None
            now = self.clock()
            _, statuses, refusals = self._judge(actor, info, spec, staged.new, now)
            if refusals:
                return await refused(refusals[0].reason, refusals[0].message, tuple(statuses))
            try:
                await self._audit_off("control.execute", actor.name, info.site, info.path,
                                      {"staged_id": staged_id, "command_id": command_id,
                                       "value": jsonable(staged.new), "approved_by": staged.approved_by})
            except ControlRefused as exc:
                return await refused(exc.reason, exc.message, tuple(statuses))
            self._last_write[info.path] = now
            out = await self._execute(info, spec, staged, command_id, tuple(statuses))
        with contextlib.suppress(ControlRefused):  # logged; the write happened, its outcome must reach the caller
            await self._audit_off("control.result", actor.name, info.site, info.path, _out(out))
        return out

    async def _execute(self, info: TagInfo, spec: WriteSpec, staged: Staged, command_id: str,
                       statuses: tuple[InterlockStatus, ...]) -> Outcome:
        conn = self.wiring.connectors().get(info.device)
        tag_id = self.wiring.tag_ids[info.path]
        sent_us = int(self.clock() * 1e6)

        def outcome(status: Any, message: str, reason: Reason | None = None, back: Value | None = None) -> Outcome:
            return Outcome(status, command_id, staged.id, info.path, message, reason, staged.new, back, statuses)

        if conn is None:
            return outcome("failed", f"device {info.device} is not running", Reason.DEVICE_DOWN)
        try:
            await conn.write(Point(tag_id, info.path, info.tag, info.source), staged.new)
        except DeviceUnavailable as exc:
            return outcome("failed", str(exc), Reason.DEVICE_DOWN)
        except (ConnectorError, NotImplementedError) as exc:
            return outcome("failed", str(exc))
        ok, back = await self._verify(info, spec, staged.new, sent_us)
        if ok:
            return outcome("applied", "written and read back", back=back)
        seen = "nothing newer" if back is None else repr(back)
        return outcome("unverified", f"written, but the read-back showed {seen} within {spec.verify_timeout:g} s",
                       back=back)

    async def _verify(self, info: TagInfo, spec: WriteSpec, value: Value, sent_us: int) -> tuple[bool, Value | None]:
        """Poll the latest value until a good sample newer than the write equals ``value`` (within tolerance)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.verify_timeout
        last: Value | None = None
        while True:
            r = self.live.read([info.path], {info.path: math.inf})[info.path]
            if r.ts_us is not None and r.ts_us >= sent_us and r.value is not None and r.ok:
                last = r.value
                if same_value(value, r.value, spec.tolerance):
                    return True, last
            if loop.time() >= deadline:
                return False, last
            await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ checks

    def _tag(self, actor: Caller, tag_path: str, value: Any) -> TagInfo:
        """The tag to stage, checked in this order: it exists, the actor has its role (operator when it has no
        ``control:``) at its site, it is writable. Each refusal is recorded with the value asked for."""
        what = {"value": asked(value)}
        try:
            info = self.plant.tag(tag_path)
        except KeyError:
            raise self.refuse("control.stage_refused", actor, Reason.UNKNOWN_TAG, f"no tag {tag_path[:400]!r}",
                              target=tag_path[:400], details=what, field="tag") from None
        role = info.tag.control.role if info.tag.control is not None else "operator"
        if not actor.can(info.site, role):
            raise self.refuse("control.stage_refused", actor, Reason.ROLE,
                              f"{role} rights at site {info.site!r} are needed", info.site, tag_path, what)
        if not info.tag.writable or info.tag.control is None:
            why = "is not writable" if not info.tag.writable else "has no control: settings (limits, role) in " \
                                                                    "the plant model, so writes are refused"
            raise self.refuse("control.stage_refused", actor, Reason.NOT_WRITABLE, f"tag {tag_path!r} {why}",
                              info.site, tag_path, what, field="tag")
        return info

    def _coerce(self, actor: Caller, info: TagInfo, value: Any) -> Value:
        try:
            return coerce(info.tag.type, value)
        except ValueError as exc:
            raise self.refuse("control.stage_refused", actor, Reason.INVALID_VALUE, f"{info.path}: {exc}",
                              info.site, info.path, {"value": asked(value)}, field="value") from None

    def _judge(self, actor: Caller, info: TagInfo, spec: WriteSpec, new: Value,
               now: float) -> tuple[Value | None, list[InterlockStatus], list[Refusal]]:
        """The current value, each interlock's status, and every reason to refuse ``new`` now (in order)."""
        out: list[Refusal] = []
        if not actor.can(info.site, spec.role):
            out.append(Refusal(Reason.ROLE, f"{spec.role} rights at site {info.site!r} are needed"))
        if self.disabled(info.site):
            out.append(Refusal(Reason.CONTROL_DISABLED, f"control is disabled at site {info.site!r}"))
        out += value_refusals(spec, new)
        down = self.live.device_problem(info.device)
        if down:
            out.append(Refusal(Reason.DEVICE_DOWN, down))
        reading = self.live.read([info.path], {info.path: spec.max_age})[info.path]
        if not down and not reading.ok:
            out.append(Refusal(Reason.STALE_VALUE, f"current value of {info.path}: {reading.why}"))
        step = step_refusal(spec, reading, new)
        if step:
            out.append(step)
        statuses = self._interlock_statuses(info.path)
        bad = [s for s in statuses if not s.ok]
        if bad:
            out.append(Refusal(Reason.INTERLOCK, "; ".join(f"{s.expression}: {s.detail}" for s in bad)))
        last = self._last_write.get(info.path)
        if last is not None and now - last < spec.min_interval:
            out.append(Refusal(Reason.RATE_LIMIT, f"at most one write every {spec.min_interval:g} s to this tag "
                                                  f"(last {now - last:.1f} s ago)"))
        return reading.value, statuses, out

    def _interlock_statuses(self, path: str) -> list[InterlockStatus]:
        locks = self._interlocks.get(path, [])
        paths = list(dict.fromkeys(p for lk in locks for p in lk.paths))
        readings = self.live.read(paths) if paths else {}
        return [lk.evaluate(readings) for lk in locks]

    def _purge(self, now: float) -> None:
        for sid in [k for k, s in self._pending.items() if now > s.expires_at]:
            del self._pending[sid]

    def refuse(self, kind: str, actor: Caller, reason: Reason, message: str, site: str | None = None,
               target: str | None = None, details: dict[str, Any] | None = None, *, field: str | None = None,
               code: str | None = None) -> ControlRefused:
        """Record a refused request (``kind`` such as ``control.stage_refused``, with the reason, the message,
        the user and the target) and return the ControlRefused to raise (``field``: the argument at fault;
        ``code``: see ``ControlRefused``). Callers that refuse a control request before this service judges it
        (a body that does not validate) record it here too."""
        self._audit(kind, actor.name, site, target, {**(details or {}), "reason": reason.value, "message": message})
        return ControlRefused(reason, message, field, code)

    async def _audit_off(self, kind: str, actor: str, site: str | None, target: str | None,
                         details: dict[str, Any]) -> None:
        """``_audit`` in a worker thread (a database write), awaited: what follows still waits for it. One at a
        time, in the order asked (as when they were written in the event loop)."""
        async with self._audit_order:
            await asyncio.to_thread(self._audit, kind, actor, site, target, details)

    def _audit(self, kind: str, actor: str, site: str | None, target: str | None, details: dict[str, Any]) -> None:
        try:
            self.audit.record(kind, actor, site, target, details)
        except Exception as exc:
            log.exception("audit record %s failed", kind)
            raise ControlRefused(Reason.AUDIT_FAILED, f"the audit log refused the record: {exc}") from None


def _stage_details(s: Staged) -> dict[str, Any]:
    """Tag paths travel as values, never as keys (an audit trail may refuse secret-looking keys)."""
    locks = [{"expression": i.expression, "ok": i.ok, "detail": i.detail,
              "values": [[p, jsonable(v)] for p, v in i.values.items()]} for i in s.interlocks]
    return {"staged_id": s.id, "current": jsonable(s.current), "value": jsonable(s.new), "ok": s.ok,
            "refusals": [r.to_dict() for r in s.refusals], "interlocks": locks}


def _out(o: Outcome) -> dict[str, Any]:
    return {"status": o.status, "command_id": o.command_id, "staged_id": o.staged_id,
            "reason": o.reason.value if o.reason else None, "message": o.message,
            "value": jsonable(o.value), "read_back": jsonable(o.read_back)}


def _consume(task: asyncio.Task[Outcome]) -> None:
    """Retrieve a task's exception (already raised to the caller another way)."""
    if not task.cancelled():
        task.exception()
