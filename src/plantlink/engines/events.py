"""What the engines produce: events that a ``Recorder`` writes to the relational store.

An engine step turns input (samples, state changes, operator actions) into a new engine state and a list of
these events; it never touches the store. Each event knows the statements that record it (``apply`` on a
connection of the store), run in the recorder's thread, in the order the events were produced; the recorder
writes many events in one transaction. Most events are one call of a store function with their fields as its
arguments (``StoreEvent``: an event states its kind, its function and its fields, nothing else).

A downtime event gets its row id only when it is written; the engine keeps a ``Ref`` to it, and later events
of the same row (close, delete, micro flag) carry that ref, resolved when they are written (after the open,
since the outbox is in order).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, fields
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

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """``exc`` says the store does not answer (retry until it is back), rather than that it refused."""
        from plantlink.store.opening import unavailable

        return unavailable(exc)

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


def _arg(v: object) -> object:
    """A field as the store function takes it: a downtime row's ``Ref`` becomes its id (tuples: a list)."""
    if isinstance(v, Ref):
        return v.get()
    if isinstance(v, tuple) and all(isinstance(r, Ref) for r in v):
        return [r.get() for r in v]
    return v


_NOT_ARG = {"arg": False}  # field metadata: kept on the event, not passed to ``write``


@dataclass(frozen=True)
class StoreEvent:
    """An event recorded by one function of the store's modules: ``write(c, *fields)``, its fields in
    declaration order (a ``Ref`` passed as its row id; fields with ``_NOT_ARG`` metadata left out). Each
    event states only its ``kind``, its ``write`` and its fields."""

    kind: ClassVar[str]
    write: ClassVar[Callable[..., object]]

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        args = [_arg(getattr(self, f.name)) for f in fields(self) if f.metadata.get("arg", True)]
        return type(self).write(_db(c), *args)


# -- machine states -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntervalOpened(StoreEvent):
    kind = "interval.open"
    write = staticmethod(intervals.open_interval)
    machine: str
    line: str
    state: str
    start_us: int
    shift: str | None
    meta: dict[str, int] | None = field(default=None, metadata=_NOT_ARG)

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        iid = super().apply(c, to)
        for key, value in (self.meta or {}).items():  # the heartbeat rides along
            intervals.set_meta(_db(c), key, value)
        return iid


@dataclass(frozen=True)
class IntervalClosed(StoreEvent):
    kind = "interval.close"
    write = staticmethod(intervals.close_interval)
    machine: str
    end_us: int
    reason: EndReason


@dataclass(frozen=True)
class MetaSet(StoreEvent):
    kind = "meta.set"
    write = staticmethod(intervals.set_meta)
    key: str
    value: int


@dataclass(frozen=True)
class RunEnded(StoreEvent):
    kind = "run.end"
    write = staticmethod(runs.end)
    run_id: int
    end_us: int


# -- downtime -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DowntimeOpened(StoreEvent):
    kind = "downtime.open"
    write = staticmethod(downtime.open_event)
    ref: Ref = field(metadata=_NOT_ARG)
    machine: str
    line: str
    site: str
    start_us: int
    state: str
    shift: str | None

    def apply(self, c: sa.Connection | None, to: Sinks) -> object:
        self.ref.id = int(super().apply(c, to))  # type: ignore[call-overload]
        return self.ref.id

    def undo(self) -> None:
        """Its transaction was rolled back: the row id is not real."""
        self.ref.id = None


@dataclass(frozen=True)
class DowntimeClosed(StoreEvent):
    kind = "downtime.close"
    write = staticmethod(downtime.close_event)
    ref: Ref
    end_us: int
    state: str
    micro: bool
    reason: EndReason


@dataclass(frozen=True)
class DowntimeDeleted(StoreEvent):
    kind = "downtime.delete"
    write = staticmethod(downtime.delete)
    ref: Ref


@dataclass(frozen=True)
class DowntimeMicro(StoreEvent):
    kind = "downtime.micro"
    write = staticmethod(downtime.mark_micro)
    refs: tuple[Ref, ...]
    micro: bool


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
