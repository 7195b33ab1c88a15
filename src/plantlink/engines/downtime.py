"""Downtime events from machine state changes, operator reasons, and the Pareto of lost time.

A stop is a maximal period, in planned time, in a non-running state (idle, starved, blocked, faulted,
changeover): consecutive non-running states merge into one event, whose ``state`` is the dominant one (the
longest in total inside it; on a tie the first). Periods in the ``unknown`` state (no usable data) are
events of their own with state ``unknown``, never merged with stops, and counted apart in the Pareto. An
event is cut at shift boundaries, so that each shift owns its part of a long stop. A stop shorter than the
line's ``downtime.micro_stop`` is a micro-stop (judged on the whole stop, not on a piece cut at a shift change).
A period that lasted no time (opened and closed at the same instant) leaves no event.

Events are built incrementally: ``DowntimeEngine.on_change`` listens to the StateEngine; an event is opened
in the store when a stop begins and closed when it ends (end reason "change"). The engine keeps what it needs
of an open event in memory (the time spent in each stop state, for the dominant one) and does no database
I/O while it runs: its opens and closes are ``engines.events`` written by the recorder. ``attach(states)`` first
closes events a crash left open at the state engine's last known time (end reason "crash"), then listens; at
the state engine's clean stop the open events are closed at the stop time (end reason "stop").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantlink.engines.events import (
    DowntimeClosed,
    DowntimeDeleted,
    DowntimeMicro,
    DowntimeOpened,
    Event,
    Ref,
    Sinks,
)
from plantlink.engines.recorder import Recorder
from plantlink.engines.state_derive import UNKNOWN
from plantlink.engines.states import LAST_US_KEY, StateChange, StateEngine
from plantlink.errors import PlantlinkError, ReasonError
from plantlink.samples import iso_us, now_us
from plantlink.store.records import END_CHANGE, END_CRASH, END_STOP, EndReason

if TYPE_CHECKING:
    from plantlink.model import Plant
    from plantlink.model.schema import Line
    from plantlink.store import DowntimeEvent, Page, Pareto, Store

log = logging.getLogger("plantlink.engines.downtime")

#: Non-running states in planned time that make a stop.
STOP_STATES = frozenset({"idle", "starved", "blocked", "faulted", "changeover"})


@dataclass
class _Open:
    ref: Ref
    kind: str  # "stop" or "unknown"
    start_us: int
    shift: str | None
    chain_start_us: int  # where the stop began, before any cut at a shift change
    pieces: list[Ref] = field(default_factory=list)  # earlier pieces of this stop (cut at shift changes)
    state: str = ""  # the machine's state now, since ``since_us``
    since_us: int = 0
    spent: dict[str, int] = field(default_factory=dict)  # time in each stop state so far, in first-seen order
    line: str = ""

    def follow(self, t: int) -> None:
        """Count the time in the current state up to ``t``."""
        if self.state in STOP_STATES and t > self.since_us:
            self.spent[self.state] = self.spent.get(self.state, 0) + t - max(self.since_us, self.start_us)
        self.since_us = max(self.since_us, t)

    def dominant(self) -> str:
        """The stop state longest in total (ties: the first seen); for an event that lasted no time, the
        state that opened it."""
        if not self.spent:
            return self.state if self.state in STOP_STATES else "idle"
        return max(self.spent, key=lambda s: self.spent[s])


def _lines(plant: Plant) -> dict[str, Line]:
    return {f"{s.name}/{a.name}/{ln.name}": ln for s in plant.sites for a in s.areas for ln in a.lines}


def _kind(state: str) -> str | None:
    if state in STOP_STATES:
        return "stop"
    return "unknown" if state == UNKNOWN else None


class DowntimeEngine:
    """Turns state changes into downtime events in ``store``; validates and records reasons."""

    #: the store's meta key of the state engine's clock it follows (``StateEngine.last_key``)
    last_key = LAST_US_KEY

    def __init__(self, plant: Plant, store: Store, now: Callable[[], int] = now_us, recorder: Recorder | None = None):
        self.store = store
        self.recorder = recorder if recorder is not None else Recorder(Sinks.of(store))
        self.now = now
        self.lines = _lines(plant)
        self._open: dict[str, _Open] = {}
        self._out: list[Event] = []
        self.errors = 0

    def attach(self, states: StateEngine) -> list[DowntimeEvent]:
        """Recover (``start``) and listen to ``states``. Call before the state engine starts: its start
        moves the last known time on."""
        if states.started:
            raise PlantlinkError("attach the downtime engine before starting the state engine")
        closed = self.start()
        states.add_listener(self.on_change)
        states.add_stop_listener(self.stop)
        return closed

    def start(self) -> list[DowntimeEvent]:
        """Close events left open by a crash at the last known time; returns them as closed. Reads and writes
        the store at once (before the engines run)."""
        last = self.store.get_meta(self.last_key)
        closed = []
        for ev in self.store.open_events():
            end = max(ev.start_us, last if last is not None else ev.start_us)
            closed.append(self._recover(ev, end))
            log.warning("downtime event %d of %s open since %s left open by a crash, closed at the last known "
                        "time %s", ev.id, ev.machine, iso_us(ev.start_us), iso_us(end))
        self._open.clear()
        return closed

    def reload(self, plant: Plant) -> None:
        """Take the reason trees and micro-stop lengths of a model applied while running."""
        self.lines = _lines(plant)

    def end_machines(self, machines: Iterable[str], end_us: int) -> None:
        """Close the open events of ``machines`` (removed from the model: their states ended) at ``end_us``,
        end reason "stop"."""
        for machine in machines:
            cur = self._open.pop(machine, None)
            if cur is not None:
                cur.follow(end_us)
                self._close(cur, end_us, END_STOP)
        self._submit()

    def _recover(self, ev: DowntimeEvent, end_us: int) -> DowntimeEvent:
        if end_us <= ev.start_us:  # it lasted no time: no event
            self.store.delete_event(ev.id)
            return ev
        unknown = ev.state == UNKNOWN
        state = UNKNOWN if unknown else self._dominant_stored(ev.machine, ev.start_us, end_us)
        micro = not unknown and (end_us - ev.start_us) < self._micro_us(ev.line)
        return self.store.close_event(ev.id, end_us, state, micro, END_CRASH)

    def stop(self, end_us: int) -> None:
        """Clean stop (a state engine stop listener): close the open events at ``end_us``, end reason "stop"."""
        for machine, cur in list(self._open.items()):
            try:
                cur.follow(end_us)
                self._close(cur, end_us, END_STOP)
            except Exception:
                self.errors += 1
                log.exception("downtime engine could not close event of %s at the clean stop", machine)
            del self._open[machine]
        self._submit()

    def _submit(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self.recorder.submit(out)

    # -- building events -------------------------------------------------------------------------
    def on_change(self, ch: StateChange) -> None:
        """StateEngine listener: the events it makes go to the recorder."""
        try:
            self._out.extend(self.step(ch))
        except Exception:
            self.errors += 1
            log.exception("downtime engine could not record %s", str(ch))
        finally:
            self._submit()

    def step(self, ch: StateChange) -> list[Event]:
        """One step, pure of I/O: the open events move on ``ch``; returns the events it produced."""
        out: list[Event] = []
        self._out, saved = out, self._out
        try:
            self._on_change(ch)
        finally:
            self._out = saved
        return out

    def _on_change(self, ch: StateChange) -> None:
        kind = _kind(ch.state)
        cur = self._open.get(ch.machine)
        if cur is not None:
            cur.follow(ch.since_us)
        if cur is None or (kind == cur.kind and ch.shift == cur.shift):
            if cur is not None:
                cur.state = ch.state  # the stop goes on, maybe in another stop state
            elif kind is not None:
                self._begin(ch, kind, ch.since_us, [])
            return
        del self._open[ch.machine]
        if kind == cur.kind:  # the same stop goes on in a new shift: cut it, the new piece continues the chain
            self._close(cur, ch.since_us, END_CHANGE, micro=False)
            self._begin(ch, kind, cur.chain_start_us, [*cur.pieces, cur.ref])
            return
        self._close(cur, ch.since_us, END_CHANGE)
        if kind is not None:
            self._begin(ch, kind, ch.since_us, [])

    def _begin(self, ch: StateChange, kind: str, chain_start_us: int, pieces: list[Ref]) -> None:
        ref = Ref()
        self._out.append(DowntimeOpened(ref, ch.machine, ch.line, ch.site, ch.since_us, ch.state, ch.shift))
        self._open[ch.machine] = _Open(ref, kind, ch.since_us, ch.shift, chain_start_us, pieces, ch.state,
                                       ch.since_us, line=ch.line)

    def _close(self, cur: _Open, end_us: int, reason: EndReason, micro: bool | None = None) -> None:
        """Close ``cur`` at ``end_us`` for ``reason``; one that lasted no time is dropped. ``micro`` None:
        decided by the length of the whole stop (from its chain start); then the earlier pieces follow it."""
        if end_us <= cur.start_us:
            self._out.append(DowntimeDeleted(cur.ref))
            return
        unknown = cur.kind == "unknown"
        if micro is None:
            micro = not unknown and (end_us - cur.chain_start_us) < self._micro_us(cur.line)
            if micro and cur.pieces:
                self._out.append(DowntimeMicro(tuple(cur.pieces), True))
        self._out.append(DowntimeClosed(cur.ref, end_us, UNKNOWN if unknown else cur.dominant(), micro, reason))

    def _dominant_stored(self, machine: str, start_us: int, end_us: int) -> str:
        """The dominant stop state of a recovered event, from the intervals the store holds."""
        spent: dict[str, int] = defaultdict(int)
        for iv in self.store.intervals(start_us, end_us, machines=[machine]):
            if iv.state in STOP_STATES and iv.end_us is not None:
                spent[iv.state] += iv.end_us - iv.start_us
        if not spent:  # zero-length event: the state that opened it
            ivs = self.store.intervals(start_us, start_us + 1, machines=[machine])
            return ivs[0].state if ivs and ivs[0].state in STOP_STATES else "idle"
        return max(spent, key=lambda s: spent[s])  # dicts keep first-seen order: ties go to the first

    def _micro_us(self, line: str) -> int:
        ln = self.lines.get(line)
        return round((ln.downtime.micro_stop if ln is not None else 120.0) * 1e6)

    # -- reasons ---------------------------------------------------------------------------------
    def assign_reason(self, event_id: int, reason: str | None, *, by: str, group: str | None = None,
                      comment: str | None = None, at_us: int | None = None) -> DowntimeEvent:
        """Give (or change; None clears) an event's reason, checked against its line's reason tree.
        ``group`` may be left out when the reason belongs to one group only."""
        if not by or not by.strip():
            raise ReasonError("say who assigns the reason (by=...)")
        ev = self.store.event(event_id)
        grp = None if reason is None else self._check(ev.line, reason, group)
        return self.store.set_reason(event_id, grp, reason, by.strip(), self.now() if at_us is None else at_us,
                                     comment)

    def reasons(self, line: str) -> dict[str, list[str]]:
        """The reason tree of ``line``: group -> reasons."""
        ln = self.lines.get(line)
        return {} if ln is None else {g.name: list(g.reasons) for g in ln.downtime.reasons}

    def _check(self, line: str, reason: str, group: str | None) -> str:
        tree = self.reasons(line)
        valid = "; ".join(f"{g}: {', '.join(rs)}" for g, rs in tree.items())
        if not tree:
            raise ReasonError(f"line {line} has no downtime reasons: add downtime.reasons to it in the plant model")
        if group is not None and group not in tree:
            raise ReasonError(f"unknown reason group {group!r} for line {line}; valid groups: {', '.join(tree)}")
        groups = [g for g, rs in tree.items() if reason in rs and group in (None, g)]
        if not groups:
            where = f"in group {group!r} " if group else ""
            raise ReasonError(f"unknown reason {reason!r} {where}for line {line}; valid reasons: {valid}")
        if len(groups) > 1:
            raise ReasonError(f"reason {reason!r} is in several groups of line {line} ({', '.join(groups)}): "
                              "give the group")
        return groups[0]

    # -- reading ---------------------------------------------------------------------------------
    def events(self, **query: Any) -> Page:
        """A page of events (see ``Store.downtime`` for the filters)."""
        return self.store.downtime(**query)

    def pareto(self, by: str, start_us: int, end_us: int, line: str | None = None,
               site: str | None = None) -> Pareto:
        """Lost time by reason, machine or shift; micro-stops and unknown periods counted apart."""
        return self.store.pareto(by, start_us, end_us, line=line, site=site)
