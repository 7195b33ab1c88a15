"""What the engines produce: events that a ``Recorder`` writes to the relational store.

An engine step turns input (samples, state changes, operator actions) into a new engine state and a list of
these events; it never touches the store. Each event knows the one store call that records it, made in
the recorder's thread, in the order the events were produced.

A downtime event gets its row id only when it is written; the engine keeps a ``Ref`` to it, and later events
of the same row (close, delete, micro flag) carry that ref, resolved when they are written (after the open,
since the outbox is in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

from plantlink.store.records import EndReason

if TYPE_CHECKING:
    from plantlink.store import Store
    from plantlink.store.alarm_repo import AlarmStore, JournalEntry, SavedState


class Sinks(NamedTuple):
    """Where events are written (``store`` None: only alarm events, for an alarm engine on its own)."""

    store: Store | None
    alarms: AlarmStore | None

    @property
    def db(self) -> Store:
        if self.store is None:
            raise LookupError("this recorder writes no state or downtime events")
        return self.store

    @classmethod
    def of(cls, store: Store) -> Sinks:
        from plantlink.store.alarm_repo import AlarmStore

        return cls(store, AlarmStore(store.engine))


class Event(Protocol):
    kind: ClassVar[str]

    def write(self, to: Sinks) -> object: ...


@dataclass(eq=False)
class Ref:
    """The row id of a downtime event, known once its opening is written."""

    id: int | None = None

    def get(self) -> int:
        if self.id is None:
            raise LookupError("the downtime event was never written (its opening failed)")
        return self.id


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

    def write(self, to: Sinks) -> object:
        return to.db.open_interval(self.machine, self.line, self.state, self.start_us, self.shift, self.meta)


@dataclass(frozen=True)
class IntervalClosed:
    kind: ClassVar[str] = "interval.close"
    machine: str
    end_us: int
    reason: EndReason

    def write(self, to: Sinks) -> object:
        return to.db.close_interval(self.machine, self.end_us, self.reason)


@dataclass(frozen=True)
class MetaSet:
    kind: ClassVar[str] = "meta.set"
    key: str
    value: int

    def write(self, to: Sinks) -> object:
        to.db.set_meta(self.key, self.value)
        return None


@dataclass(frozen=True)
class RunEnded:
    kind: ClassVar[str] = "run.end"
    run_id: int
    end_us: int

    def write(self, to: Sinks) -> object:
        to.db.end_run(self.run_id, self.end_us)
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

    def write(self, to: Sinks) -> object:
        self.ref.id = to.db.open_event(self.machine, self.line, self.site, self.start_us, self.state,
                                          self.shift)
        return self.ref.id


@dataclass(frozen=True)
class DowntimeClosed:
    kind: ClassVar[str] = "downtime.close"
    ref: Ref
    end_us: int
    state: str
    micro: bool
    reason: EndReason

    def write(self, to: Sinks) -> object:
        return to.db.close_event(self.ref.get(), self.end_us, self.state, self.micro, self.reason)


@dataclass(frozen=True)
class DowntimeDeleted:
    kind: ClassVar[str] = "downtime.delete"
    ref: Ref

    def write(self, to: Sinks) -> object:
        to.db.delete_event(self.ref.get())
        return None


@dataclass(frozen=True)
class DowntimeMicro:
    kind: ClassVar[str] = "downtime.micro"
    refs: tuple[Ref, ...]
    micro: bool

    def write(self, to: Sinks) -> object:
        to.db.mark_micro([r.get() for r in self.refs], self.micro)
        return None


# -- alarms -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlarmsRecorded:
    """Journal entries and the changed alarms' states, in one transaction."""

    kind: ClassVar[str] = "alarms.record"
    entries: tuple[JournalEntry, ...]
    states: tuple[SavedState, ...] = field(default=())

    def write(self, to: Sinks) -> object:
        if to.alarms is None:
            raise LookupError("this recorder writes no alarm events")
        to.alarms.record(self.entries, self.states)
        return None
