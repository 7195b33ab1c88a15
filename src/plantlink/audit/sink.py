"""Where actions are recorded: ``AuditSink``, the one method that the control path, the alarm service and
every other recorder of actions need.

``plantlink.audit.log.AuditLog`` (the hash-chained trail in the store) fits it; ``MemoryAudit`` keeps records
in a list (tests, or a runtime without a store).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class AuditSink(Protocol):
    """Appends one record of who did what, where (``site``) to what (``target``)."""

    def record(self, kind: str, actor: str, site: str | None = None, target: str | None = None,
               details: Mapping[str, Any] | None = None) -> object:
        """Append one entry; raise when it cannot be recorded (the control path then refuses the write, the
        alarm service the action)."""
        ...


@dataclass(frozen=True)
class Entry:
    ts: float
    kind: str
    actor: str
    site: str | None
    target: str | None
    details: dict[str, Any]


@dataclass
class MemoryAudit:
    """An in-memory ``AuditSink``: ``entries`` in order of recording."""

    entries: list[Entry] = field(default_factory=list)

    def record(self, kind: str, actor: str, site: str | None = None, target: str | None = None,
               details: Mapping[str, Any] | None = None) -> Entry:
        entry = Entry(time.time(), kind, actor, site, target, dict(details or {}))
        self.entries.append(entry)
        return entry

    def kinds(self) -> list[str]:
        return [e.kind for e in self.entries]
