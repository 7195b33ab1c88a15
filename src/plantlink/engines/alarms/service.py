"""What the API and the HMI use: the engine, its store and notifier, operator actions with an audit trail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from plantlink.engines.alarms import performance
from plantlink.engines.alarms.engine import AlarmEngine
from plantlink.samples import now_us
from plantlink.store.alarm_repo import AlarmStore


class AuditSink(Protocol):
    """Where operator actions are recorded (the audit log of ``plantlink.audit`` implements it)."""

    def record(self, kind: str, actor: str, site: str, target: str, details: Mapping[str, Any]) -> Any: ...


@dataclass
class AlarmService:
    engine: AlarmEngine
    store: AlarmStore
    notifier: Any = None
    audit: AuditSink | None = None
    #: Operators per site, for the EEMUA 191 rate per operator (default 1).
    operators: dict[str, int] = field(default_factory=dict)

    def _audit(self, kind: str, actor: str, site: str, target: str, **details: Any) -> None:
        if self.audit is not None:
            self.audit.record(kind, actor, site, target, details)

    def acknowledge(self, keys: Sequence[str], actor: str, comment: str | None) -> list[str]:
        news = self.engine.acknowledge(keys, actor, comment)
        for k, new in zip(keys, news, strict=True):
            self._audit("alarm.ack", actor, self.engine.info(k).site, k, comment=comment, state=new)
        return news

    def shelve(self, key: str, until_us: int, reason: str, actor: str) -> None:
        self.engine.shelve(key, until_us, reason, actor)
        self._audit("alarm.shelve", actor, self.engine.info(key).site, key, until_us=until_us, reason=reason)

    def unshelve(self, key: str, actor: str, comment: str | None) -> str:
        new = self.engine.unshelve(key, actor, comment)
        self._audit("alarm.unshelve", actor, self.engine.info(key).site, key, comment=comment, state=new)
        return new

    def out_of_service(self, key: str, out: bool, actor: str, comment: str | None) -> str:
        new = self.engine.set_out_of_service(key, out, actor, comment)
        kind = "alarm.out_of_service" if out else "alarm.in_service"
        self._audit(kind, actor, self.engine.info(key).site, key, comment=comment, state=new)
        return new

    def performance(self, start_us: int, end_us: int, sites: Sequence[str],
                    now: int | None = None) -> performance.Performance:
        t = now_us() if now is None else now
        events = self.store.activations(start_us, end_us, sites)
        stale = [v.to_dict() for v in self.engine.stale(t, performance.STALE_US) if v.site in sites]
        return performance.compute(events, start_us, end_us, self.operators, sites, stale)
