"""Repository of the alarm tables: journal, current states, notification deliveries.

``AlarmStore(engine)`` shares the relational store's SQLAlchemy engine (``AlarmStore(store.engine)``); each
method is one short transaction. Nothing above the store speaks SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from plantlink.errors import NotFound
from plantlink.store.alarm_tables import alarm_journal, alarm_states, notify_deliveries

J, A, D = alarm_journal, alarm_states, notify_deliveries


@dataclass(frozen=True)
class JournalEntry:
    """One transition of one alarm: ``event`` (activate, clear, ack, shelve, ...) took it from ``from_state``
    to ``to_state`` at ``ts_us``, done by ``actor`` ("system" for the process) with an optional comment."""

    alarm: str
    site: str
    ts_us: int
    event: str
    from_state: str
    to_state: str
    priority: str
    actor: str = "system"
    comment: str | None = None
    value: float | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SavedState:
    alarm: str
    state: str
    active: bool
    since_us: int
    activated_us: int | None = None
    shelved_until_us: int | None = None
    shelve_reason: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    alarm: str
    site: str
    target: str
    kind: str
    reason: str
    status: str
    attempts: int
    created_us: int
    updated_us: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _journal_row(e: JournalEntry) -> dict[str, Any]:
    d = e.to_dict()
    d.pop("id")
    return d


class AlarmStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # -- journal and states: one transaction per batch of transitions ------------------------------
    def record(self, entries: Sequence[JournalEntry], states: Sequence[SavedState]) -> None:
        """Append ``entries`` to the journal and replace the saved state of the alarms in ``states``."""
        if not entries and not states:
            return
        with self.engine.begin() as c:
            self.record_in(c, entries, states)

    def record_in(self, c: sa.Connection, entries: Sequence[JournalEntry], states: Sequence[SavedState]) -> None:
        """``record`` in the caller's transaction (the engines' recorder writes many events in one)."""
        if entries:
            c.execute(J.insert(), [_journal_row(e) for e in entries])
        if states:
            keys = [s.alarm for s in states]
            for i in range(0, len(keys), 500):
                c.execute(A.delete().where(A.c.alarm.in_(keys[i:i + 500])))
            c.execute(A.insert(), [asdict(s) for s in states])

    def saved_states(self) -> list[SavedState]:
        with self.engine.connect() as c:
            return [SavedState(**r._asdict()) for r in c.execute(A.select())]

    def journal(self, *, start_us: int | None = None, end_us: int | None = None, alarms: Sequence[str] | None = None,
                sites: Sequence[str] | None = None, events: Sequence[str] | None = None, limit: int = 100,
                offset: int = 0, newest_first: bool = True) -> tuple[list[JournalEntry], int]:
        """Journal entries in [start_us, end_us) with filters; returns (page, total)."""
        q = sa.select(J)
        if start_us is not None:
            q = q.where(J.c.ts_us >= start_us)
        if end_us is not None:
            q = q.where(J.c.ts_us < end_us)
        if alarms is not None:
            q = q.where(J.c.alarm.in_(list(alarms)))
        if sites is not None:
            q = q.where(J.c.site.in_(list(sites)))
        if events is not None:
            q = q.where(J.c.event.in_(list(events)))
        order = (J.c.ts_us.desc(), J.c.id.desc()) if newest_first else (J.c.ts_us, J.c.id)
        with self.engine.connect() as c:
            total = int(c.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one())
            rows = c.execute(q.order_by(*order).limit(limit).offset(offset))
            return [JournalEntry(**r._asdict()) for r in rows], total

    def activations(self, start_us: int, end_us: int,
                    sites: Sequence[str] | None = None) -> list[tuple[str, str, int, str]]:
        """(alarm, site, ts_us, priority) of every annunciation (a transition into ``unack_active``: activated,
        or released from shelved / suppressed / out of service while active) in [start_us, end_us)."""
        q = sa.select(J.c.alarm, J.c.site, J.c.ts_us, J.c.priority).where(
            J.c.to_state == "unack_active", J.c.from_state != "unack_active", J.c.ts_us >= start_us,
            J.c.ts_us < end_us)
        if sites is not None:
            q = q.where(J.c.site.in_(list(sites)))
        with self.engine.connect() as c:
            return [(r[0], r[1], int(r[2]), r[3]) for r in c.execute(q.order_by(J.c.ts_us, J.c.id))]

    # -- notification deliveries ---------------------------------------------------------------------
    def add_delivery(self, alarm: str, site: str, target: str, kind: str, reason: str, now_us: int) -> int:
        with self.engine.begin() as c:
            res = c.execute(D.insert().values(alarm=alarm, site=site, target=target, kind=kind, reason=reason,
                                              status="pending", attempts=0, created_us=now_us, updated_us=now_us))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def update_delivery(self, delivery_id: int, status: str, attempts: int, now_us: int,
                        error: str | None = None) -> None:
        with self.engine.begin() as c:
            res = c.execute(D.update().where(D.c.id == delivery_id).values(
                status=status, attempts=attempts, updated_us=now_us, last_error=error))
            if res.rowcount == 0:
                raise NotFound(f"no notification delivery {delivery_id}")

    def deliveries(self, status: Sequence[str] | None = None, sites: Sequence[str] | None = None,
                   limit: int = 100, offset: int = 0) -> tuple[list[Delivery], int]:
        q = sa.select(D)
        if status is not None:
            q = q.where(D.c.status.in_(list(status)))
        if sites is not None:
            q = q.where(D.c.site.in_(list(sites)))
        with self.engine.connect() as c:
            total = int(c.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one())
            rows = c.execute(q.order_by(D.c.updated_us.desc(), D.c.id.desc()).limit(limit).offset(offset))
            return [Delivery(**r._asdict()) for r in rows], total
