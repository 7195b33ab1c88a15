"""Downtime events from machine state changes, operator reasons, and the Pareto of lost time.

A stop is a maximal period, in planned time, in a non-running state (idle, starved, blocked, faulted,
changeover): consecutive non-running states merge into one event, whose ``state`` is the dominant one (the
longest in total inside it; on a tie the first). Periods in the ``unknown`` state (no usable data) are
events of their own with state ``unknown``, never merged with stops, and counted apart in the Pareto. An
event is cut at shift boundaries, so that each shift owns its part of a long stop. A stop shorter than the
line's ``downtime.micro_stop`` is a micro-stop (judged on the whole stop, not on a piece cut at a shift change).
A period that lasted no time (opened and closed at the same instant) leaves no event.

Events are built incrementally: ``DowntimeEngine.on_change`` listens to the StateEngine; an event is opened
in the store when a stop begins and closed when it ends (end reason "change"). ``attach(states)`` first
closes events a crash left open at the state engine's last known time (end reason "crash"), then listens; at
the state engine's clean stop the open events are closed at the stop time (end reason "stop").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plantlink.engines.states import LAST_US_KEY, UNKNOWN, StateChange, StateEngine
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
    id: int
    kind: str  # "stop" or "unknown"
    start_us: int
    shift: str | None
    chain_start_us: int  # where the stop began, before any cut at a shift change
    pieces: list[int] = field(default_factory=list)  # earlier pieces of this stop (cut at shift changes)


def _kind(state: str) -> str | None:
    if state in STOP_STATES:
        return "stop"
    return "unknown" if state == UNKNOWN else None


class DowntimeEngine:
    """Turns state changes into downtime events in ``store``; validates and records reasons."""

    def __init__(self, plant: Plant, store: Store, now: Callable[[], int] = now_us):
        self.store = store
        self.now = now
        self.lines: dict[str, Line] = {}
        for s in plant.sites:
            for a in s.areas:
                for ln in a.lines:
                    self.lines[f"{s.name}/{a.name}/{ln.name}"] = ln
        self._open: dict[str, _Open] = {}
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
        """Close events left open by a crash at the last known time; returns them as closed."""
        last = self.store.get_meta(LAST_US_KEY)
        closed = []
        for ev in self.store.open_events():
            end = max(ev.start_us, last if last is not None else ev.start_us)
            closed.append(self._close(ev.id, ev.machine, ev.line, ev.start_us, end, ev.state == UNKNOWN,
                                      reason=END_CRASH))
            log.warning("downtime event %d of %s open since %s left open by a crash, closed at the last known "
                        "time %s", ev.id, ev.machine, iso_us(ev.start_us), iso_us(end))
        self._open.clear()
        return closed

    def stop(self, end_us: int) -> None:
        """Clean stop (a state engine stop listener): close the open events at ``end_us``, end reason "stop"."""
        for machine, cur in list(self._open.items()):
            try:
                line = machine.rsplit("/", 1)[0]
                done = self._close(cur.id, machine, line, cur.start_us, end_us, cur.kind == "unknown",
                                   chain_start_us=cur.chain_start_us, reason=END_STOP)
                if done.micro and cur.pieces:
                    self.store.mark_micro(cur.pieces, True)
            except Exception:
                self.errors += 1
                log.exception("downtime engine could not close event %d of %s at the clean stop", cur.id, machine)
            del self._open[machine]

    # -- building events -------------------------------------------------------------------------
    def on_change(self, ch: StateChange) -> None:
        """StateEngine listener."""
        try:
            self._on_change(ch)
        except Exception:
            self.errors += 1
            log.exception("downtime engine could not record %s", str(ch))

    def _on_change(self, ch: StateChange) -> None:
        kind = _kind(ch.state)
        cur = self._open.get(ch.machine)
        if cur is None or (kind == cur.kind and ch.shift == cur.shift):
            if kind is not None and cur is None:
                self._begin(ch, kind, ch.since_us, [])
            return
        del self._open[ch.machine]
        if kind == cur.kind:  # the same stop goes on in a new shift: cut it, the new piece continues the chain
            self._close(cur.id, ch.machine, ch.line, cur.start_us, ch.since_us, kind == "unknown", micro=False)
            self._begin(ch, kind, cur.chain_start_us, [*cur.pieces, cur.id])
            return
        ev = self._close(cur.id, ch.machine, ch.line, cur.start_us, ch.since_us, cur.kind == "unknown",
                         chain_start_us=cur.chain_start_us, reason=END_CHANGE)
        if ev.micro and cur.pieces:
            self.store.mark_micro(cur.pieces, True)
        if kind is not None:
            self._begin(ch, kind, ch.since_us, [])

    def _begin(self, ch: StateChange, kind: str, chain_start_us: int, pieces: list[int]) -> None:
        ev_id = self.store.open_event(ch.machine, ch.line, ch.site, ch.since_us, ch.state, ch.shift)
        self._open[ch.machine] = _Open(ev_id, kind, ch.since_us, ch.shift, chain_start_us, pieces)

    def _close(self, ev_id: int, machine: str, line: str, start_us: int, end_us: int, unknown: bool,
               micro: bool | None = None, chain_start_us: int | None = None,
               reason: EndReason = END_CHANGE) -> DowntimeEvent:
        """Close an event for ``reason``; one that lasted no time is dropped. ``micro`` None: decided by the
        length of the whole stop (from ``chain_start_us``)."""
        if end_us <= start_us:
            ev = self.store.event(ev_id)
            self.store.delete_event(ev_id)
            return ev
        state = UNKNOWN if unknown else self._dominant(machine, start_us, end_us)
        if micro is None:
            first = start_us if chain_start_us is None else chain_start_us
            micro = not unknown and (end_us - first) < self._micro_us(line)
        return self.store.close_event(ev_id, end_us, state, micro, reason)

    def _dominant(self, machine: str, start_us: int, end_us: int) -> str:
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
