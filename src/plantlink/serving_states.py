"""Machine states and alarms in ``plantlink serve``: read from the store, where the state engine of ``plantlink
run`` keeps each machine's open interval (its state now and since when) and its alarm engine each alarm's state
(``AlarmMirror``).

``StoredStates`` answers ``current()`` from the open intervals it last read and reads them again every
``interval`` seconds; a change between two reads goes to its listeners as a ``StateChange`` (the live stream's
state messages). A change and its undoing within one interval are not seen; ``previous`` is the state the
replica saw before, which is the engine's previous state unless it changed more than once meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from plantlink.engines.alarms.engine import AlarmEngine
from plantlink.engines.states import StateChange
from plantlink.model import Plant
from plantlink.store.alarm_repo import AlarmStore, SavedState
from plantlink.store.records import Interval
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.serving")


class Periodic:
    """A task that runs ``tick`` every ``interval`` seconds until ``stop``. A tick that fails (what it reads is
    away for a while) is counted, kept in ``last_error`` and logged with ``failing``; the next tick tries again."""

    name = "periodic"
    failing = "a periodic read failed"

    def __init__(self, interval: float):
        self.interval = interval
        self.errors = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait([self._task], self.name)
        self._task = None

    async def tick(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception as exc:
                self.errors += 1
                self.last_error = str(exc)
                log.warning("%s: %s", self.failing, exc)


class OpenIntervals(Protocol):
    def open_intervals(self) -> list[Interval]: ...


class StoredStates(Periodic):
    """The state engine's ``current()`` and listeners, as the store shows them (``services.deps.StateSource``)."""

    name = "stored-states"
    failing = "machine states: the store did not answer"

    def __init__(self, store: Callable[[], OpenIntervals | None], interval: float = 1.0,
                 also: Callable[[], None] | None = None):
        """``also``: read with the states, in the same worker thread (the alarms: ``AlarmMirror.read``)."""
        super().__init__(interval)
        self.store, self.also = store, also
        self._now: dict[str, Interval] = {}
        self._listeners: list[Callable[[StateChange], None]] = []

    def current(self) -> dict[str, tuple[str, int]]:
        return {m: (iv.state, iv.start_us) for m, iv in self._now.items()}

    def add_listener(self, fn: Callable[[StateChange], None]) -> None:
        self._listeners.append(fn)

    def read(self) -> list[StateChange]:
        """Read the open intervals again (blocking); the changes since the last read."""
        store = self.store()
        if store is None:
            return []
        if self.also is not None:
            self.also()
        now = {iv.machine: iv for iv in store.open_intervals()}
        changes = [StateChange(m, iv.line, m.split("/", 1)[0], iv.state, iv.start_us, iv.shift,
                               old.state if old is not None else None, old.start_us if old is not None else None)
                   for m, iv in now.items()
                   if (old := self._now.get(m)) is None or (old.state, old.start_us) != (iv.state, iv.start_us)]
        self._now = now
        return changes

    def start(self) -> None:
        self.read()
        super().start()

    async def tick(self) -> None:
        changes = await asyncio.to_thread(self.read)  # the store away: the states last read are kept
        for ch in changes:
            for fn in list(self._listeners):
                try:
                    fn(ch)
                except Exception:
                    log.exception("a state change listener failed")


class _SavedOnly:
    """What ``AlarmEngine.start`` reads of a store: the saved states (nothing is written through it)."""

    def __init__(self, saved: list[SavedState]):
        self._saved = saved

    def saved_states(self) -> list[SavedState]:
        return self._saved


class AlarmMirror:
    """The alarms now, as the alarm engine of ``plantlink run`` saved them in the store (``alarm_states``): an
    ``AlarmEngine`` of the model's definitions that is never fed, restored from the saved states at every
    ``read`` (a new one swapped in whole). Only read: its ``alarms()``, ``info()`` and definitions; the
    actions and performance need the running alarm system."""

    def __init__(self, plant: Plant, records: Callable[[], AlarmStore | None]):
        self.records = records
        self.compiled = AlarmEngine(plant).c
        self.engine: AlarmEngine | None = None

    def read(self) -> None:
        """Read the saved states again (blocking)."""
        store = self.records()
        if store is None:
            return
        engine = AlarmEngine(compiled=self.compiled)
        engine.store = _SavedOnly(store.saved_states())  # type: ignore[assignment]  # read by start() only
        engine.start()
        engine.store = None
        self.engine = engine
