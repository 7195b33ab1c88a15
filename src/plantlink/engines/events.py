"""What the engines produce: events that a ``Recorder`` writes to the relational store.

An engine step turns input (samples, state changes, operator actions) into a new engine state and a list of
these events; it never touches the store. Each event knows the statements that record it (``apply`` on a
connection of the store), run in the recorder's thread, in the order the events were produced; the recorder
writes many events in one transaction.

A downtime event gets its row id only when it is written; the engine keeps a ``Ref`` to it, and later events
of the same row (close, delete, micro flag) carry that ref, resolved when they are written (after the open,
since the outbox is in order).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

import sqlalchemy as sa

from plantlink.store import downtime, intervals, runs
from plantlink.store.records import EndReason

if TYPE_CHECKING:
    from plantlink.store import Store
    from plantlink.store.alarm_repo import AlarmStore, JournalEntry, SavedState


class Sinks(NamedTuple):
    """Where events are written (``store`` None: only alarm events, for an alarm engine on its own)."""

    store: Store | None
    alarms: AlarmStore | None

    def begin(self) -> AbstractContextManager[sa.Connection | None]:
        """A transaction on the database both stores use (one transaction may hold events of either); none
        for an alarm store that is not a database (a test double with ``record`` only)."""
        engine = self.store.engine if self.store is not None else getattr(self.alarms, "engine", None)
        return engine.begin() if engine is not None else nullcontext(None)

    @classmethod
    def of(cls, store: Store) -> Sinks:
        from plantlink.store.alarm_repo import AlarmStore

        return cls(store, AlarmStore(store.engine))


class Event(Protocol):
    kind: ClassVar[str]

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        """Record the event in the transaction of ``c``."""


@dataclass(eq=False)
class Ref:
    """The row id of a downtime event, known once its opening is written."""

    id: int | None = None

    def get(self) -> int:
        if self.id is None:
            raise LookupError("the downtime event was never written (its opening failed)")
        return self.id


def _db(c: sa.Connection | None) -> sa.Connection:
    if c is None:
        raise LookupError("this recorder writes alarm events only")
    return c


# -- machine states -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntervalOpened:
    kind: ClassVar[str] = "interval.open"
    machine: str
    line: str
    state: str
    start_us: int
    shift: str | None
    meta: dict[str, int] | None = None

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        iid = intervals.open_interval(c, self.machine, self.line, self.state, self.start_us, self.shift)
        for key, value in (self.meta or {}).items():  # the heartbeat rides along
            intervals.set_meta(c, key, value)
        return iid


@dataclass(frozen=True)
class IntervalClosed:
    kind: ClassVar[str] = "interval.close"
    machine: str
    end_us: int
    reason: EndReason

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        return intervals.close_interval(c, self.machine, self.end_us, self.reason)


@dataclass(frozen=True)
class MetaSet:
    kind: ClassVar[str] = "meta.set"
    key: str
    value: int

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        intervals.set_meta(c, self.key, self.value)
        return None


@dataclass(frozen=True)
class RunEnded:
    kind: ClassVar[str] = "run.end"
    run_id: int
    end_us: int

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        runs.end(c, self.run_id, self.end_us)
        return None


# -- downtime -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DowntimeOpened:
    kind: ClassVar[str] = "downtime.open"
    ref: Ref
    machine: str
    line: str
    site: str
    start_us: int
    state: str
    shift: str | None

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        self.ref.id = downtime.open_event(c, self.machine, self.line, self.site, self.start_us, self.state,
                                          self.shift)
        return self.ref.id

    def undo(self) -> None:
        """Its transaction was rolled back: the row id is not real."""
        self.ref.id = None


@dataclass(frozen=True)
class DowntimeClosed:
    kind: ClassVar[str] = "downtime.close"
    ref: Ref
    end_us: int
    state: str
    micro: bool
    reason: EndReason

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        return downtime.close_event(c, self.ref.get(), self.end_us, self.state, self.micro, self.reason)


@dataclass(frozen=True)
class DowntimeDeleted:
    kind: ClassVar[str] = "downtime.delete"
    ref: Ref

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        downtime.delete(c, self.ref.get())
        return None


@dataclass(frozen=True)
class DowntimeMicro:
    kind: ClassVar[str] = "downtime.micro"
    refs: tuple[Ref, ...]
    micro: bool

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        c = _db(c)
        downtime.mark_micro(c, [r.get() for r in self.refs], self.micro)
        return None


# -- alarms -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlarmsRecorded:
    """Journal entries and the changed alarms' states, in one transaction."""

    kind: ClassVar[str] = "alarms.record"
    entries: tuple[JournalEntry, ...]
    states: tuple[SavedState, ...] = field(default=())

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        if to.alarms is None:
            raise LookupError("this recorder writes no alarm events")
        if c is None:
            to.alarms.record(self.entries, self.states)
        else:
            to.alarms.record_in(c, self.entries, self.states)
        return None
