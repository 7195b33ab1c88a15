"""Machine states from live samples, recorded as intervals in the store.

For every machine with ``states`` rules (see ``model.production.StateRules``) the engine keeps the last value
and quality of its inputs and derives the state, first rule that applies wins:

1. outside planned busy time (the site's shift calendar): ``planned_stop``;
2. ``faulted_if`` true: ``faulted``;
3. ``state_tag``: its value through ``state_map`` (default: the index in STATES);
4. ``counter``: ``running`` while it changed within ``window`` seconds, else ``idle``.

A rule whose input is missing, of bad quality or not a number makes the state ``unknown`` (rules before it
still win: a good "fault" input that is true gives ``faulted`` whatever the counter says). A counter seen
for less than ``window`` without changing is ``unknown`` too (not yet known to be idle). With only
``faulted_if``, a machine that is not faulted is ``running``.

Every change of state, or of shift (the shift name is kept on each interval), closes the machine's open
interval and opens a new one at the instant of the change, and listeners are told. Timeouts and calendar
boundaries are placed at their exact instant, not at the tick that noticed them.

The engine does no database I/O while it runs: each step (``step``: a batch in, events out; ``advance``: the
clock moves on; ``feed`` and ``tick`` are the same and hand the events to the recorder) produces
``engines.events`` that a ``Recorder`` writes off the event loop. Only ``start`` reads and repairs the store,
once, before the engine runs. The engine is bound once to the tag ids of the model load (``tag_ids=`` or
``bind``).

Restart: the engine writes its clock into the store (``states.last_us``) on every change and at least every
``heartbeat_s`` seconds. ``start`` records a run of plantlink in the store; an interval (and a run) left open
by a crash is closed at that last known time (never before its start), with end reason "crash": what
happened while plantlink was down is not known, so the timeline has a gap there rather than a guess. A clean
``stop`` closes every interval and the run at the stop time with end reason "stop", and tells its stop
listeners (the downtime engine closes its open events the same way). Intervals ended by the next state have
end reason "change".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from plantlink.engines.events import Event, IntervalClosed, IntervalOpened, MetaSet, RunEnded, Sinks
from plantlink.engines.loop import consume
from plantlink.engines.recorder import Recorder
from plantlink.engines.state_derive import MachineState, PlannedLike, SiteEdges
from plantlink.samples import iso_us, now_us, values_of
from plantlink.store.records import END_CRASH, END_STOP

if TYPE_CHECKING:
    from plantlink.bus import Subscription
    from plantlink.model import Plant
    from plantlink.store import Store

log = logging.getLogger("plantlink.engines.states")

LAST_US_KEY = "states.last_us"


@dataclass(frozen=True)
class StateChange:
    """A machine entered ``state`` at ``since_us`` (``previous`` is None for the first state after start)."""

    machine: str
    line: str
    site: str
    state: str
    since_us: int
    shift: str | None
    previous: str | None
    previous_since_us: int | None

    def __str__(self) -> str:  # for logs: readable times
        return f"{self.machine} {self.previous} -> {self.state} at {iso_us(self.since_us)}"


Listener = Callable[[StateChange], None]
#: Told the instant of a clean stop, after the state intervals were closed.
StopListener = Callable[[int], None]


class StateEngine:
    """Derives machine states from sample batches; its events (intervals, heartbeat, runs) go to ``recorder``
    (by default one that writes into ``store`` at once, in the caller's thread)."""

    #: the store's meta key of the engine's clock (one per site when each site has its own engine)
    last_key = LAST_US_KEY

    def __init__(self, plant: Plant, store: Store, planned_by_site: Mapping[str, PlannedLike] | None = None,
                 now: Callable[[], int] = now_us, heartbeat_s: float = 10.0, recorder: Recorder | None = None,
                 tag_ids: Mapping[str, int] | None = None):
        planned_by_site = planned_by_site or {}
        self.store = store
        self.recorder = recorder if recorder is not None else Recorder(Sinks.of(store))
        self._out: list[Event] = []
        self.now = now
        self.heartbeat_us = round(heartbeat_s * 1e6)
        self.machines: dict[str, MachineState] = {}
        edges = {site: SiteEdges(planned) for site, planned in planned_by_site.items()}
        for path, m in plant.machines():
            if m.states is not None:
                self.machines[path] = MachineState(path, m.states, edges.get(path.split("/")[0]))
        self.listeners: list[Listener] = []
        self.stop_listeners: list[StopListener] = []
        self.run_id: int | None = None
        self.errors = 0
        self._ids: np.ndarray | None = None  # the bound tag ids of the inputs, sorted (None: not bound)
        self._slots: dict[int, list[tuple[MachineState, str]]] = {}
        self._last_beat: int | None = None
        self._started = False
        if tag_ids is not None:
            self.bind(tag_ids)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, now_us: int | None = None) -> list[int]:
        """Record a run; close intervals a crash left open (at the last known time), then derive every
        machine's first state at ``now_us``. Returns the ids of the intervals closed by recovery."""
        t = self.now() if now_us is None else now_us
        last = self.store.get_meta(self.last_key)
        self._begin_run(t, last)
        closed = self._close_left_open(last)
        for m in self.machines.values():
            m.clock_us = t
            self._evaluate(m, t)
        self._started = True
        self._beat(t, force=True)
        self._submit()
        return closed

    #: Who left an interval open, in the recovery's log line.
    left_open_by = "a crash"

    def _owns(self, machine: str) -> bool:
        """Whether this engine recovers ``machine``'s open interval (every machine's, here)."""
        return True

    def _begin_run(self, t: int, last: int | None) -> None:
        self.run_id, crashed = self.store.begin_run(t, last)
        for run in crashed:
            log.warning("the run of plantlink that started at %s did not stop cleanly: its intervals and "
                        "downtime events are closed at its last known time %s", iso_us(run.start_us),
                        iso_us(run.end_us))

    def _close_left_open(self, last: int | None) -> list[int]:
        closed = []
        for iv in self.store.open_intervals():
            if not self._owns(iv.machine):
                continue
            end = max(iv.start_us, last if last is not None else iv.start_us)
            self.store.close_interval(iv.machine, end, END_CRASH)
            closed.append(iv.id)
            log.warning("machine %s: interval %r open since %s left open by %s, closed at the last known time %s",
                        iv.machine, iv.state, iso_us(iv.start_us), self.left_open_by, iso_us(end))
        return closed

    def stop(self, now_us: int | None = None) -> None:
        """Clean shutdown: close every open interval at ``now_us`` (end reason "stop"), tell the stop listeners,
        end the run."""
        t = self.now() if now_us is None else now_us
        for m in self.machines.values():
            self._advance(m, t)
            self._out.append(IntervalClosed(m.path, t, END_STOP))
        self._submit()
        self._tell(self.stop_listeners, t, f"the clean stop ({iso_us(t)})")
        if self.run_id is not None:
            self._out.append(RunEnded(self.run_id, t))
            self.run_id = None
        self._beat(t, force=True)
        self._submit()
        self._started = False
        log.info("machine states closed at the clean stop (%s)", iso_us(t))

    @property
    def started(self) -> bool:
        return self._started

    def add_listener(self, fn: Listener) -> None:
        self.listeners.append(fn)

    def add_stop_listener(self, fn: StopListener) -> None:
        self.stop_listeners.append(fn)

    def current(self) -> dict[str, tuple[str, int]]:
        """Each machine's state and since when."""
        return {p: (m.state, m.since_us) for p, m in self.machines.items()
                if m.state is not None and m.since_us is not None}

    def reload(self, plant: Plant, tag_ids: Mapping[str, int],
               planned_by_site: Mapping[str, PlannedLike] | None = None, now_us: int | None = None) -> list[str]:
        """Take the state rules and calendars of a model applied while running (``plantlink apply``), at
        ``now_us``. A machine kept goes on: its open interval continues (same start) unless its state or shift
        under the new rules differs, which opens the next one now; a removed machine's interval is closed now
        (end reason "stop"); an added machine starts now. Returns the removed machines' paths."""
        t = self.now() if now_us is None else now_us
        edges = {site: SiteEdges(planned) for site, planned in (planned_by_site or {}).items()}
        if self._started:  # up to now under the rules it had
            for m in self.machines.values():
                self._advance(m, t)
        machines: dict[str, MachineState] = {}
        for path, mdl in plant.machines():
            if mdl.states is not None:
                machines[path] = MachineState(path, mdl.states, edges.get(path.split("/")[0]))
                if path in self.machines:
                    machines[path].carry(self.machines[path], tag_ids)
        removed = [p for p in self.machines if p not in machines]
        if self._started:
            for path in removed:
                self._out.append(IntervalClosed(path, t, END_STOP))
        self.machines = machines
        self.bind(tag_ids)
        if self._started:
            for m in machines.values():
                m.clock_us = max(t, m.clock_us or t)
                self._evaluate(m, m.clock_us)
            self._submit()
        return removed

    # -- input -----------------------------------------------------------------------------------
    def bind(self, tag_ids: Mapping[str, int]) -> None:
        """Bind the engine to the tag ids of this model load (path -> id), once: every batch is read with them."""
        slots: dict[int, list[tuple[MachineState, str]]] = {}
        for m in self.machines.values():
            for role in m.inputs:
                tid = tag_ids.get(m.tag_path(role))
                if tid is None:
                    log.warning("machine %s: no tag id for %s %s; its state stays unknown", m.path, role,
                                m.tag_path(role))
                    continue
                slots.setdefault(int(tid), []).append((m, role))
                m.ids[role] = int(tid)
        self._slots = slots
        self._ids = np.array(sorted(slots), dtype=np.uint32)

    def feed(self, batch: pa.RecordBatch) -> int:
        """Take the samples of state inputs from ``batch`` and hand the events to the recorder; returns how
        many rows were relevant."""
        if not self._started:
            self.start()
        try:
            return self._feed(batch)
        finally:
            self._submit()

    def step(self, batch: pa.RecordBatch) -> list[Event]:
        """One step, pure of I/O: the engine's state moves on ``batch``; returns the events it produced
        (not handed to the recorder). The engine must be started."""
        self._feed(batch)
        return self._take()

    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    def _submit(self) -> None:
        if self._out:
            self.recorder.submit(self._take())

    def _feed(self, batch: pa.RecordBatch) -> int:
        if self._ids is None:
            raise LookupError("the state engine is not bound to tag ids: pass tag_ids= or call bind() first")
        if batch.num_rows == 0 or self._ids.size == 0:
            return 0
        ids = batch.column("tag_id").to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(np.isin(ids, self._ids))
        if rows.size == 0:
            return 0
        sub = batch.take(pa.array(rows))
        ts = sub.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        order = np.argsort(ts, kind="stable")
        tids, vals, qual = sub.column("tag_id").to_pylist(), values_of(sub), sub.column("quality").to_pylist()
        for i in order.tolist():
            for m, role in self._slots[tids[i]]:
                self._sample(m, role, vals[i], qual[i], int(ts[i]))
        return int(rows.size)

    def _sample(self, m: MachineState, role: str, value: Any, quality: int, ts: int) -> None:
        t = max(ts, m.clock_us if m.clock_us is not None else ts)  # late samples count at the machine's clock
        self._advance(m, t)
        m.apply(role, None if value is None else (value if isinstance(value, str) else float(value)), quality, t)
        self._evaluate(m, t)

    def tick(self, now_us: int | None = None) -> None:
        """Advance every machine's clock: counter timeouts, planned-time and shift boundaries, and hand the
        events to the recorder. Call ~1/s."""
        if not self._started:
            self.start(now_us)
        self._tick(self.now() if now_us is None else now_us)
        self._submit()

    def advance(self, now_us: int) -> list[Event]:
        """``tick``, pure of I/O: returns the events (not handed to the recorder). The engine must be started."""
        self._tick(now_us)
        return self._take()

    def _tick(self, t: int) -> None:
        for m in self.machines.values():
            self._advance(m, t)
        self._beat(t)

    # -- state changes ---------------------------------------------------------------------------
    def _advance(self, m: MachineState, t: int) -> None:
        lo = m.clock_us if m.clock_us is not None else t
        if t <= lo:
            return
        for b in m.boundaries(lo, t):
            self._evaluate(m, b)
        m.clock_us = t
        self._evaluate(m, t)

    def _evaluate(self, m: MachineState, t: int) -> None:
        state, shift = m.derive(t), m.shift_at(t)
        if state == m.state and shift == m.shift:
            return
        change = StateChange(m.path, m.line, m.site, state, t, shift, m.state, m.since_us)
        m.state, m.since_us, m.shift = state, t, shift
        beat = self._last_beat is None or t > self._last_beat
        meta = {self.last_key: t} if beat else None  # the heartbeat rides in the interval's transaction
        self._out.append(IntervalOpened(m.path, m.line, state, t, shift, meta))
        if beat:
            self._last_beat = t
        self._tell(self.listeners, change, str(change))

    def _tell(self, listeners: Sequence[Callable[[Any], None]], what: Any, shown: str) -> None:
        """Call every listener with ``what``; one that fails is logged and counted, the others still hear."""
        for fn in listeners:
            try:
                fn(what)
            except Exception:
                self.errors += 1
                log.exception("a state listener failed on %s", shown)

    def _beat(self, t: int, force: bool = False) -> None:
        last = self._last_beat
        if last is None or (t > last and (force or t - last >= self.heartbeat_us)):
            self._out.append(MetaSet(self.last_key, t))
            self._last_beat = t

    # -- wiring ----------------------------------------------------------------------------------
    async def run(self, sub: Subscription, tick_interval: float = 1.0) -> None:
        """Consume ``sub`` until it closes, ticking every ``tick_interval`` seconds; then stop cleanly."""
        if not self._started:
            self.start()

        try:
            await consume(self, sub, name="state", tick_interval=tick_interval)
        finally:
            self.stop()
