"""The alarm engine: vectorised conditions (``evaluate``), the ISA-18.2 state machine (``isa``) for the few
alarms that change, a journal of every transition and each alarm's state in the relational store.

The engine does no database I/O while it runs: each step's journal entries and changed states become one
``AlarmsRecorded`` event that the recorder (``engines.recorder``) writes, retrying with backoff when the
store fails (the recorder's one failure policy). Only ``start`` reads the store (the saved states).

Runtime wiring (like ``StateEngine.run``)::

    alarms = AlarmEngine(plant, AlarmStore(store.engine), tag_ids=tag_ids)   # bound once per model load
    alarms.attach(states)                 # suppression by design follows machine states
    alarms.start()                        # restores active / acknowledged / shelved alarms
    task = asyncio.create_task(alarms.run(bus.subscribe("alarms")))   # lossless subscription

A step is pure of I/O: ``step(batch)`` and ``advance(now)`` return the events (at most one
``AlarmsRecorded``); ``feed`` and ``tick`` are the same steps handing their events to the recorder. Operator
actions hand theirs at once (``commit`` waits until they are written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from plantlink.engines.alarms import isa
from plantlink.engines.alarms.compiled import AlarmInfo, Compiled, TagIndex, compile_alarms, plant_alarms
from plantlink.engines.alarms.evaluate import Changes, Evaluator, changes
from plantlink.engines.events import AlarmsRecorded, Event, Sinks
from plantlink.engines.loop import consume
from plantlink.engines.recorder import Recorder
from plantlink.errors import AlarmActionError
from plantlink.samples import now_us, text_rows
from plantlink.store.alarm_repo import AlarmStore, JournalEntry, SavedState

if TYPE_CHECKING:
    from plantlink.bus import Subscription

log = logging.getLogger("plantlink.engines.alarms")

_STATE_CODE = {s: i for i, s in enumerate(isa.STATES)}


@dataclass(frozen=True)
class AlarmEvent:
    """A transition, as told to listeners (notifications, live views)."""

    key: str
    tag: str
    site: str
    machine: str
    priority: str
    event: str
    from_state: str
    to_state: str
    ts_us: int
    actor: str
    value: float | None
    message: str
    response: str
    #: the definition's limit (None for discrete and comm alarms) and as read beside the value (``> 7.1``)
    limit: float | None = None
    limit_text: str = ""


@dataclass(frozen=True)
class AlarmView:
    """One alarm as the API shows it."""

    key: str
    name: str
    tag: str
    site: str
    machine: str
    type: str
    priority: str
    state: str
    active: bool
    since_us: int
    activated_us: int | None
    shelved_until_us: int | None
    shelve_reason: str | None
    message: str
    response: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Listener = Callable[[AlarmEvent], None]


class AlarmEngine:
    def __init__(self, plant: Any = None, store: AlarmStore | None = None, *, compiled: Compiled | None = None,
                 now: Callable[[], int] = now_us, recorder: Recorder | None = None,
                 tag_ids: Mapping[str, int] | None = None):
        self.store = store
        if recorder is None and store is not None:
            recorder = Recorder(Sinks(None, store))
        self.recorder = recorder
        self.now = now
        self._load(compiled if compiled is not None else compile_alarms(plant_alarms(plant)))
        self.machine_states: dict[str, str] = {}
        self.listeners: list[Listener] = []
        self.errors = 0
        self.journaled = 0
        self._pending: list[JournalEntry] = []
        self._dirty: set[int] = set()
        self._started = False
        if tag_ids is not None:
            self.bind(tag_ids)

    def _load(self, c: Compiled) -> None:
        """Take the compiled definitions, every alarm normal."""
        self.c = c
        self.ev = Evaluator(self.c)
        n = self.c.size
        self.state = np.zeros(n, dtype=np.int8)  # code in isa.STATES
        self.since = np.zeros(n, dtype=np.int64)
        self.activated = np.full(n, -1, dtype=np.int64)
        self.by_key = {info.key: info for info in self.c.infos}
        self.shelved: dict[int, tuple[int, str, str]] = {}  # index -> (until_us, reason, by)
        self._by_machine: dict[str, list[AlarmInfo]] = {}
        for info in self.c.infos:
            if info.defn.suppress_when_state:
                self._by_machine.setdefault(info.machine, []).append(info)

    def reload(self, plant: Any, tag_ids: Mapping[str, int], renames: Mapping[str, str] | None = None) -> None:
        """Take the definitions of a newly applied model (``plantlink.reload``), between two batches: an alarm
        still defined (by key; a renamed tag's alarms under its new path, ``renames``: new path -> former)
        keeps its state, acknowledgement, shelving and condition; a new one starts normal; a removed one is
        dropped. On-delay timers and rate-of-change history restart."""
        self.flush()
        former = {was: new for new, was in (renames or {}).items()}
        kept: dict[str, tuple[int, int, int, tuple[int, str, str] | None, bool]] = {}
        for info in self.c.infos:
            i = info.index
            path, _, name = info.key.rpartition(":")
            key = f"{former.get(path, path)}:{name}"
            kept[key] = (int(self.state[i]), int(self.since[i]), int(self.activated[i]), self.shelved.get(i),
                         bool(self.ev.active[i]))
        self._load(compile_alarms(plant_alarms(plant)))
        self.bind(tag_ids)
        t = self.now()
        for key, (state, since, activated, shelf, active) in kept.items():
            found = self.by_key.get(key)
            if found is None:
                continue
            i = found.index
            self.state[i], self.since[i], self.activated[i] = state, since, activated
            if shelf is not None:
                self.shelved[i] = shelf
            self.ev.restore(i, active, t)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self, now_us: int | None = None) -> int:
        """Restore the saved states (active, acknowledged, shelved, out of service). Returns how many."""
        t = self.now() if now_us is None else now_us
        saved = self.store.saved_states() if self.store is not None else []
        restored = 0
        for s in saved:
            info = self.by_key.get(s.alarm)
            if info is None or s.state not in _STATE_CODE:
                continue
            i = info.index
            self.state[i] = _STATE_CODE[s.state]
            self.since[i] = s.since_us
            self.activated[i] = -1 if s.activated_us is None else s.activated_us
            if s.shelved_until_us is not None:
                self.shelved[i] = (s.shelved_until_us, s.shelve_reason or "", s.by or "")
            self.ev.restore(i, s.active, t)
            restored += 1
        self._started = True
        return restored

    def add_listener(self, fn: Listener) -> None:
        self.listeners.append(fn)

    def attach(self, states: Any) -> None:
        """Follow machine states (a ``StateEngine``) for suppression by design."""
        states.add_listener(self.on_machine_state)

    # -- input ------------------------------------------------------------------------------------------
    def bind(self, tag_ids: Mapping[str, int]) -> None:
        """Bind the engine to the tag ids of this model load (path -> id), once: every batch is read with them."""
        self.ev.index = TagIndex.build(self.c, tag_ids)
        for path in self.ev.index.missing:
            log.warning("alarms: no tag id for %s; its alarms are never evaluated", path)

    def feed(self, batch: pa.RecordBatch) -> int:
        """Evaluate every alarm on ``batch`` and hand the events to the recorder; returns the number of
        condition changes."""
        if not self._started:
            self.start()
        n = self._evaluate(batch)
        self.flush()
        return n

    def step(self, batch: pa.RecordBatch) -> list[Event]:
        """``feed``, pure of I/O: returns the events (not handed to the recorder)."""
        self._evaluate(batch)
        return self._take()

    def _evaluate(self, batch: pa.RecordBatch) -> int:
        if self.ev.index is None:
            raise LookupError("the alarm engine is not bound to tag ids: pass tag_ids= or call bind() first")
        text = text_rows(batch) if batch.num_rows and self.c.size else None
        if text is not None:  # alarms are on numbers: text samples are skipped
            batch = batch.filter(pa.array(~text))
        if batch.num_rows == 0 or self.c.size == 0:
            return 0
        ids = batch.column("tag_id").to_numpy(zero_copy_only=False)
        ts = batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        vals = batch.column("value").to_numpy(zero_copy_only=False)
        qual = batch.column("quality").to_numpy(zero_copy_only=False)
        changes = self.ev.process(ids, ts, vals, qual)
        self._apply(changes)
        return len(changes)

    def derive(self, keys: Sequence[str], ts_us: Sequence[int], active: Sequence[bool],
               values: Sequence[float]) -> int:
        """Conditions computed outside the engine (the derived alarms: SPC rules, anomaly, RUL), in time order
        per alarm: each that changes the alarm's condition goes through the ISA-18.2 state machine like a
        sample-driven one and is handed to the recorder. Returns the number of condition changes."""
        if not self._started:
            self.start()
        ev, out_i, out_t, out_a, out_v = self.ev, [], [], [], []
        for key, t, a, v in zip(keys, ts_us, active, values, strict=True):
            i = self.info(key).index
            if bool(ev.active[i]) == bool(a):
                continue
            ev.raw[i] = ev.active[i] = bool(a)
            ev.raw_since[i], ev.raw_value[i] = int(t), float(v)
            out_i.append(i)
            out_t.append(int(t))
            out_a.append(bool(a))
            out_v.append(float(v))
        if out_i:
            self._apply(changes(out_i, out_t, out_a, out_v))
            self.flush()
        return len(out_i)

    def condition(self, key: str) -> bool:
        """Whether the alarm's condition holds now (restored at start for derived alarms: their source picks up
        from it, so a condition that went away while stopped is cleared)."""
        return bool(self.ev.active[self.info(key).index])

    def tick(self, now_us: int | None = None) -> int:
        """Delays that ran out by wall time, shelves that expired, handed to the recorder. Call about once a
        second."""
        n = self._advance(self.now() if now_us is None else now_us)
        self.flush()
        return n

    def advance(self, now_us: int) -> list[Event]:
        """``tick``, pure of I/O: returns the events (not handed to the recorder)."""
        self._advance(now_us)
        return self._take()

    def _advance(self, t: int) -> int:
        if self.ev.index is None:
            return 0
        changes = self.ev.advance(t)
        self._apply(changes)
        for i, (until, _, _) in sorted(self.shelved.items()):
            if until <= t:
                self._release(i, max(until, int(self.since[i])), "unshelve", "system", "shelve time ran out")
        return len(changes)

    def _apply(self, ch: Changes) -> None:
        for i, t, a, v in zip(ch.index.tolist(), ch.ts_us.tolist(), ch.active.tolist(), ch.value.tolist(),
                              strict=True):
            info = self.c.infos[i]
            cur = isa.STATES[self.state[i]]
            step = isa.on_condition(cur, a, info.defn.latched)
            if a:
                self.activated[i] = t
            if step is None:
                self._dirty.add(i)  # the condition is saved even when nothing is annunciated
                continue
            self._move(i, step[0], step[1], t, "system", None, None if v != v else v)

    # -- operator actions -------------------------------------------------------------------------------
    def info(self, key: str) -> AlarmInfo:
        info = self.by_key.get(key)
        if info is None:
            raise AlarmActionError(f"no alarm {key!r}", 404, key)
        return info

    def acknowledge(self, keys: Sequence[str], actor: str, comment: str | None = None,
                    now_us: int | None = None) -> list[str]:
        """Acknowledge (or reset, when latched) every alarm of ``keys``; all or none: the first alarm that
        cannot be acknowledged raises AlarmActionError and nothing changes. Returns the new states."""
        t = self.now() if now_us is None else now_us
        infos = [self.info(k) for k in keys]
        news = [isa.on_ack(isa.STATES[self.state[f.index]], bool(self.ev.active[f.index]), f.key) for f in infos]
        for f, new in zip(infos, news, strict=True):
            self._move(f.index, new, "ack", t, actor, comment, None)
        self.flush()
        return news

    def shelve(self, key: str, until_us: int, reason: str, actor: str, now_us: int | None = None) -> None:
        t = self.now() if now_us is None else now_us
        f = self.info(key)
        if not reason.strip():
            raise AlarmActionError("shelving needs a reason", 422, key)
        if until_us <= t:
            raise AlarmActionError("shelve until a time in the future", 422, key)
        cur = isa.STATES[self.state[f.index]]
        if cur == isa.OOS:
            raise AlarmActionError(f"alarm {key} is out of service: it cannot be shelved", 409, key)
        self.shelved[f.index] = (until_us, reason, actor)
        self._move(f.index, isa.SHELVED, "shelve", t, actor, reason, None)
        self.flush()

    def unshelve(self, key: str, actor: str, comment: str | None = None, now_us: int | None = None) -> str:
        f = self.info(key)
        if f.index not in self.shelved:
            raise AlarmActionError(f"alarm {key} is not shelved", 409, key)
        new = self._release(f.index, self.now() if now_us is None else now_us, "unshelve", actor, comment)
        self.flush()
        return new

    def set_out_of_service(self, key: str, out: bool, actor: str, comment: str | None = None,
                           now_us: int | None = None) -> str:
        t = self.now() if now_us is None else now_us
        f = self.info(key)
        cur = isa.STATES[self.state[f.index]]
        if out == (cur == isa.OOS):
            raise AlarmActionError(f"alarm {key} is {'already' if out else 'not'} out of service", 409, key)
        if out:
            self.shelved.pop(f.index, None)
            self._move(f.index, isa.OOS, "out_of_service", t, actor, comment, None)
            new = isa.OOS
        else:
            new = self._release(f.index, t, "in_service", actor, comment)
        self.flush()
        return new

    def _release(self, i: int, t: int, event: str, actor: str, comment: str | None) -> str:
        self.shelved.pop(i, None)
        new, _ = isa.released(bool(self.ev.active[i]), self._suppressed(i))
        self._move(i, new, event, t, actor, comment, None)  # into unack_active when the condition is there
        return new

    # -- suppression by design -------------------------------------------------------------------------
    def _suppressed(self, i: int) -> bool:
        info = self.c.infos[i]
        when = info.defn.suppress_when_state
        return bool(when) and self.machine_states.get(info.machine) in when

    def on_machine_state(self, change: Any) -> None:
        """A ``StateChange``: suppress or release the alarms of that machine that depend on its state."""
        self.machine_states[change.machine] = change.state
        for info in self._by_machine.get(change.machine, ()):
            i, cur = info.index, isa.STATES[self.state[info.index]]
            if cur in (isa.OOS, isa.SHELVED):
                continue
            if self._suppressed(i) and cur != isa.SUPPRESSED:
                self._move(i, isa.SUPPRESSED, "suppress", change.since_us, "system", change.state, None)
            elif not self._suppressed(i) and cur == isa.SUPPRESSED:
                self._release(i, change.since_us, "unsuppress", "system", change.state)
        self.flush()

    # -- transitions, journal ---------------------------------------------------------------------------
    def _move(self, i: int, new: str, event: str, t: int, actor: str, comment: str | None,
              value: float | None) -> None:
        info = self.c.infos[i]
        old = isa.STATES[self.state[i]]
        self.state[i] = _STATE_CODE[new]
        self.since[i] = t
        self._dirty.add(i)
        self._pending.append(JournalEntry(info.key, info.site, t, event, old, new, info.priority, actor, comment,
                                          value))
        self._tell(i, event, old, new, t, actor, value)

    def _tell(self, i: int, event: str, old: str, new: str, t: int, actor: str, value: float | None) -> None:
        if not self.listeners:
            return
        info = self.c.infos[i]
        e = AlarmEvent(info.key, info.tag, info.site, info.machine, info.priority, event, old, new, t, actor,
                       value, info.defn.message, info.defn.response, info.defn.limit, info.defn.limit_text())
        for fn in self.listeners:
            try:
                fn(e)
            except Exception:
                self.errors += 1
                log.exception("an alarm listener failed on %s", e)

    def _saved(self, i: int) -> SavedState:
        sh = self.shelved.get(i)
        act = int(self.activated[i])
        return SavedState(self.c.infos[i].key, isa.STATES[self.state[i]], bool(self.ev.active[i]),
                          int(self.since[i]), None if act < 0 else act, sh[0] if sh else None,
                          sh[1] if sh else None, sh[2] if sh else None)

    def _record(self) -> AlarmsRecorded | None:
        """Pending journal entries and changed states as one event (one transaction); None when nothing
        changed."""
        if not self._pending and not self._dirty:
            return None
        states = tuple(self._saved(i) for i in sorted(self._dirty))
        entries, self._pending = tuple(self._pending), []
        self._dirty.clear()
        return AlarmsRecorded(entries, states)

    def _take(self) -> list[Event]:
        ev = self._record()
        return [] if ev is None else [ev]

    def flush(self) -> None:
        """Hand pending journal entries and changed states to the recorder (without one: dropped)."""
        ev = self._record()
        if self.recorder is not None and ev is not None:
            self.recorder.submit([ev])
            self.journaled += len(ev.entries)

    def commit(self, timeout: float = 2.0) -> bool:
        """``flush``, then wait up to ``timeout`` s until the recorder has written it: an operator's action is
        in the journal when the action is answered. False when the store is failing (the recorder keeps the
        entries and retries: the action stands)."""
        self.flush()
        return True if self.recorder is None else self.recorder.flush(timeout)

    # -- queries ----------------------------------------------------------------------------------------
    def view(self, i: int) -> AlarmView:
        info = self.c.infos[i]
        sh = self.shelved.get(i)
        act = int(self.activated[i])
        d = info.defn
        return AlarmView(info.key, d.name, info.tag, info.site, info.machine, d.type, d.priority,
                         isa.STATES[self.state[i]], bool(self.ev.active[i]), int(self.since[i]),
                         None if act < 0 else act, sh[0] if sh else None, sh[1] if sh else None, d.message,
                         d.response)

    def state_of(self, key: str) -> str:
        return isa.STATES[int(self.state[self.info(key).index])]

    def alarms(self, states: Sequence[str] | None = None) -> list[AlarmView]:
        """Alarms in ``states`` (default: the annunciated ones), found with one vectorised mask."""
        want = isa.ANNUNCIATED if states is None else set(states)
        codes = np.array([_STATE_CODE[s] for s in want if s in _STATE_CODE], dtype=np.int8)
        return [self.view(int(i)) for i in np.flatnonzero(np.isin(self.state, codes))]

    def stale(self, now_us: int, older_than_us: int) -> list[AlarmView]:
        """Annunciated alarms whose condition has been present longer than ``older_than_us``."""
        mask = self.ev.active & (self.activated >= 0) & (self.activated < now_us - older_than_us)
        mask &= np.isin(self.state, [_STATE_CODE[s] for s in isa.ANNUNCIATED])
        return [self.view(int(i)) for i in np.flatnonzero(mask)]

    # -- wiring -----------------------------------------------------------------------------------------
    async def run(self, sub: Subscription, tick_interval: float = 1.0) -> None:
        """Consume ``sub`` (lossless) until it closes, ticking every ``tick_interval`` seconds."""
        if not self._started:
            self.start()

        try:
            await consume(self, sub, name="alarm", tick_interval=tick_interval)
        finally:
            self.flush()
