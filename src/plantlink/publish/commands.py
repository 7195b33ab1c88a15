"""Writes asked over MQTT (docs/mqtt.md, "Writes"; docs/control.md, "MQTT as a caller").

A UNS ``<tag topic>/set`` message or an NCMD to plantlink's Sparkplug edge node asks for a write; MQTT has no
plantlink user, so every such command is refused unless the model's ``publish.commands`` enables it, and then
runs as its service principal (``as``, with its ``roles``) on the tags its ``include`` names, through the
same control path as the HMI (``plantlink.services.control.Control``: role, site switch, limits, step,
interlocks, rate limit, read-back; the service's own audit records). A critical write needs a second
person's approval, which MQTT cannot give: refused. One ``control.mqtt_command`` audit record per command,
accepted or refused, names its topic, the principal, the value and the outcome.

A command whose payload does not parse, names no published tag, or asks for a value the tag cannot take is
refused (counted, logged with its topic and reason, audited), never written; nothing here raises into the
MQTT session. A repeated command ``id`` (a QoS 1 redelivery) gets the first reply and is never written twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plantlink.control.records import ControlRefused, Reason
from plantlink.identity import Principal
from plantlink.model.publish import CommandSettings
from plantlink.services.control import Control

log = logging.getLogger("plantlink.publish.commands")

AUDIT_KIND = "control.mqtt_command"
MAX_ID = 64
MAX_PAYLOAD = 4096
#: Replies kept for repeated command ids.
HISTORY = 1000
#: Seconds between two log lines about ignored commands (commands disabled).
LOG_EVERY = 60.0


@dataclass(frozen=True)
class Reply:
    """A command's outcome: ``status`` is applied, unverified, failed, refused or ignored (commands off)."""

    status: str
    reason: str | None
    message: str
    id: str | None = None
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "applied"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "reason": self.reason, "message": self.message,
                "id": self.id, "value": self.value}


@dataclass(frozen=True)
class Command:
    """One write asked over MQTT: ``via`` (uns, sparkplug), its topic, the tag path (None: names no published
    tag), the value, the sender's id, and ``problem`` when the payload itself is bad."""

    via: str
    topic: str
    path: str | None
    value: Any = None
    id: str | None = None
    problem: str | None = None
    #: The reason code of ``problem`` (invalid_request by default; unknown_tag for a metric of no tag).
    problem_reason: str = Reason.INVALID_REQUEST.value


class CommandGate:
    """Judges and runs MQTT commands for every publisher of the plant (one per runtime)."""

    def __init__(self, settings: CommandSettings, control: Callable[[], Control | None]):
        self.settings = settings
        self._control = control
        self.principal = Principal(settings.as_ or "mqtt", dict(settings.roles), kind="token")
        #: Commands by (via, status): applied, unverified, failed, refused, ignored, repeated.
        self.counts: Counter[tuple[str, str]] = Counter()
        self._in_flight = 0
        self._replies: OrderedDict[str, Reply] = OrderedDict()
        self._logged = 0.0
        self._unlogged = 0

    def status(self, via: str) -> dict[str, int]:
        return {status: n for (v, status), n in sorted(self.counts.items()) if v == via}

    async def run(self, cmd: Command) -> Reply:
        """Judge and (when everything allows it) write; never raises (a bug is a failed reply, logged)."""
        if not self.settings.enabled:
            self._ignored(cmd)
            return Reply("ignored", None, "commands over MQTT are disabled (publish.commands.enabled)", cmd.id)
        if cmd.id is not None and cmd.id in self._replies:  # a redelivery: its first reply, audited again
            return await self._done(cmd, self._replies[cmd.id], None, repeat=True)
        if self._in_flight >= self.settings.max_in_flight:
            reply = Reply("refused", "busy", f"{self._in_flight} commands are under way: try again", cmd.id,
                          cmd.value)
            return await self._done(cmd, reply, None)
        self._in_flight += 1
        try:
            reply, site = await self._judge_and_write(cmd)
        except Exception as exc:  # a bug must not end the MQTT session: the command failed, said why
            log.exception("MQTT command on %s failed", cmd.topic)
            reply, site = Reply("failed", None, f"internal error: {exc}", cmd.id, cmd.value), None
        finally:
            self._in_flight -= 1
        return await self._done(cmd, reply, site)

    async def _judge_and_write(self, cmd: Command) -> tuple[Reply, str | None]:
        def refused(reason: Reason | str, message: str, site: str | None = None) -> tuple[Reply, str | None]:
            return Reply("refused", str(reason), message, cmd.id, cmd.value), site

        if cmd.problem is not None:
            return refused(cmd.problem_reason, cmd.problem)
        if cmd.path is None:
            return refused(Reason.UNKNOWN_TAG, "the command names no published tag")
        control = self._control()
        if control is None or not control.running:
            return refused(Reason.AUDIT_FAILED, "the control path is not running")
        svc = control.service()
        try:
            info = svc.plant.tag(cmd.path)
        except KeyError:
            return refused(Reason.UNKNOWN_TAG, f"no tag {cmd.path!r}")
        if not self.settings.allows(cmd.path):
            return refused(Reason.ROLE, f"MQTT may not write {cmd.path} (not in publish.commands.include)", info.site)
        if info.tag.control is not None and info.tag.control.critical:
            return refused(Reason.NEEDS_APPROVAL, "a critical write needs a second person's approval, which cannot "
                                                  "be given over MQTT: use the HMI", info.site)
        try:
            staged = await control.stage(self.principal, cmd.path, cmd.value)
        except ControlRefused as exc:
            return refused(exc.reason, exc.message, info.site)
        if staged.refusals:
            first = staged.refusals[0]
            return refused(first.reason, "; ".join(r.message for r in staged.refusals), info.site)
        out = await control.confirm(self.principal, staged.id, f"mqtt:{cmd.id or uuid.uuid4().hex}")
        reason = out.reason.value if out.reason is not None else None
        return Reply(out.status, reason, out.message, cmd.id, cmd.value), info.site

    async def _done(self, cmd: Command, reply: Reply, site: str | None, repeat: bool = False) -> Reply:
        """Count, log and audit the outcome; keep it for a repeated id."""
        self.counts[(cmd.via, "repeated" if repeat else reply.status)] += 1
        if cmd.id is not None and not repeat:
            self._replies[cmd.id] = reply
            while len(self._replies) > HISTORY:
                self._replies.popitem(last=False)
        if repeat:
            log.info("MQTT command on %s: id %r again: its first reply (%s), not run again", cmd.topic, cmd.id,
                     reply.status)
        elif reply.status == "applied":
            log.info("MQTT command on %s as %s: %s = %r applied", cmd.topic, self.principal.name, cmd.path,
                     cmd.value)
        else:
            log.warning("MQTT command on %s as %s: %s (%s: %s)", cmd.topic, self.principal.name, reply.status,
                        reply.reason, reply.message)
        control = self._control()
        if control is not None and control.running:
            details = {"via": cmd.via, "topic": cmd.topic[:400], "value": _kept(cmd.value), "id": cmd.id,
                       "status": reply.status, "reason": reply.reason, "message": reply.message, "repeat": repeat}
            try:
                await asyncio.to_thread(control.service().audit.record, AUDIT_KIND, self.principal.name, site,
                                        cmd.path, details)
            except Exception:
                log.exception("MQTT command on %s: its audit record failed", cmd.topic)
        return reply

    def _ignored(self, cmd: Command) -> None:
        self.counts[(cmd.via, "ignored")] += 1
        now = time.monotonic()
        if now - self._logged < LOG_EVERY:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
        self._logged, self._unlogged = now, 0
        log.warning("ignored an MQTT command on %s: commands are disabled (publish.commands)%s", cmd.topic, more)


def uns_command(topic: str, payload: bytes, path: str | None) -> Command:
    """A UNS ``/set`` message: ``{"value": v}`` or ``{"value": v, "id": "..."}``, at most ``MAX_PAYLOAD`` bytes."""
    if len(payload) > MAX_PAYLOAD:
        return Command("uns", topic, path, problem=f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return Command("uns", topic, path, problem=f"not JSON ({exc})")
    if not isinstance(doc, dict) or "value" not in doc:
        return Command("uns", topic, path, problem='expected a JSON object {"value": ..., "id": "..."}')
    extra = sorted(set(doc) - {"value", "id"})
    cid, problem = command_id(doc.get("id"))
    if extra:
        problem = f"unknown keys {extra} (expected value, id)"
    return Command("uns", topic, path, doc["value"], cid, problem)


def command_id(raw: Any) -> tuple[str | None, str | None]:
    """(the sender's command id, a problem): a string of 1 to ``MAX_ID`` characters, or absent."""
    if raw is None:
        return None, None
    if not isinstance(raw, str) or not 1 <= len(raw) <= MAX_ID:
        return None, f"'id' must be a string of 1 to {MAX_ID} characters"
    return raw, None


def _kept(value: Any) -> Any:
    """A value as the audit trail keeps it (text cut short; anything else as the start of its repr)."""
    if value is None or isinstance(value, bool | int | float):
        return value if not isinstance(value, float) or math.isfinite(value) else None
    return (value if isinstance(value, str) else repr(value))[:256]
