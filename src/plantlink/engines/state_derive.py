"""One machine's state as the state engine derives it from its inputs (a fault tag, a state tag, a production
counter) and its site's calendar (planned time, shifts), and the calendar edges a tick may cross."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from plantlink.model.production import STATES, StateRules
from plantlink.samples import Quality

log = logging.getLogger("plantlink.engines.states")

UNKNOWN = "unknown"
ROLES = ("faulted_if", "state_tag", "counter")


class ShiftLike(Protocol):
    name: str
    start_us: int
    end_us: int


class PlannedLike(Protocol):
    """What the engine needs of ``engines.calendar.PlannedTime``."""

    def is_planned(self, ts_us: int) -> bool: ...

    def planned(self, start_us: int, end_us: int) -> list[tuple[int, int]]: ...

    def shift_at(self, ts_us: int) -> Any: ...


@dataclass
class Input:
    value: float | str | None = None
    good: bool = False
    first_us: int | None = None  # counter: first good sample
    changed_us: int | None = None  # counter: last change of value


class MachineState:
    def __init__(self, path: str, rules: StateRules, edges: SiteEdges | None):
        self.path = path
        self.site, area, line, _ = path.split("/")
        self.line = f"{self.site}/{area}/{line}"
        self.rules = rules
        self.edges = edges
        self.planned = None if edges is None else edges.planned
        self.window_us = round(rules.window * 1e6)
        self.state_map: dict[int, str] = dict(rules.state_map) if rules.state_map else dict(enumerate(STATES))
        self.inputs = {role: Input() for role in ROLES if getattr(rules, role)}
        self.ids: dict[str, int] = {}  # role -> the tag id it is bound to
        self.state: str | None = None
        self.since_us: int | None = None
        self.shift: str | None = None
        self.clock_us: int | None = None
        self._shift_span: Any = None

    def tag_path(self, role: str) -> str:
        return f"{self.path}/{getattr(self.rules, role)}"

    def carry(self, prev: MachineState, tag_ids: Mapping[str, int]) -> None:
        """Go on from ``prev`` (the same machine under the model applied before): its state, since when, shift
        and clock, and the last values of the inputs still read from the same tag (by id: a renamed tag too)."""
        self.state, self.since_us, self.shift, self.clock_us = prev.state, prev.since_us, prev.shift, prev.clock_us
        for role in self.inputs:
            tid = tag_ids.get(self.tag_path(role))
            if tid is not None and prev.ids.get(role) == tid:
                self.inputs[role] = prev.inputs[role]

    # -- derivation ------------------------------------------------------------------------------
    def derive(self, t: int) -> str:
        if self.planned is not None and not self.planned.is_planned(t):
            return "planned_stop"
        fault = self.inputs.get("faulted_if")
        if fault is not None:
            if not usable(fault):
                return UNKNOWN
            if float(fault.value) != 0.0:  # type: ignore[arg-type]
                return "faulted"
        st = self.inputs.get("state_tag")
        if st is not None:
            return self._mapped(st) if usable(st) else UNKNOWN
        cnt = self.inputs.get("counter")
        if cnt is None:
            return "running"
        if not usable(cnt) or cnt.first_us is None:
            return UNKNOWN
        if cnt.changed_us is not None and t < cnt.changed_us + self.window_us:
            return "running"
        if cnt.changed_us is None and t < cnt.first_us + self.window_us:
            return UNKNOWN
        return "idle"

    def _mapped(self, inp: Input) -> str:
        if isinstance(inp.value, str):
            return inp.value if inp.value in STATES else UNKNOWN
        v = float(inp.value)  # type: ignore[arg-type]
        state = self.state_map.get(int(v)) if v.is_integer() else None
        if state is None:
            log.warning("machine %s: state_tag value %s is not in its state_map; state unknown", self.path, v)
            return UNKNOWN
        return state

    def shift_at(self, t: int) -> str | None:
        if self.planned is None:
            return None
        span = self._shift_span
        if span is None or not span.start_us <= t < span.end_us:
            span = self._shift_span = self.planned.shift_at(t)
        return None if span is None else str(span.name)

    def boundaries(self, lo: int, hi: int) -> list[int]:
        """Instants in (lo, hi] where the derived state or the shift may change without a new sample."""
        out: set[int] = set()
        cnt = self.inputs.get("counter")
        if cnt is not None:
            for base in (cnt.changed_us, cnt.first_us):
                if base is not None:
                    out.add(base + self.window_us)
        if self.edges is not None and hi > lo:
            out.update(self.edges.between(lo, hi))
        return sorted(x for x in out if lo < x <= hi)

    def apply(self, role: str, value: float | str | None, quality: int, t: int) -> None:
        inp = self.inputs[role]
        good = quality >= Quality.UNCERTAIN and value is not None
        if good and isinstance(value, float) and math.isnan(value):
            good = False
        inp.good = good
        if not good:
            return
        if role == "counter":
            if inp.first_us is None or inp.value is None:
                inp.first_us = t
            elif value != inp.value:
                inp.changed_us = t
        inp.value = value


class SiteEdges:
    """Planned-time and shift edges near (lo, hi] of one site's calendar, remembered for the last question:
    every machine of the site asks the same one on each tick."""

    def __init__(self, planned: PlannedLike):
        self.planned = planned
        self._last: tuple[int, int, tuple[int, ...]] | None = None

    def between(self, lo: int, hi: int) -> tuple[int, ...]:
        if self._last is not None and self._last[:2] == (lo, hi):
            return self._last[2]
        out: set[int] = set()
        for s, e in self.planned.planned(lo, hi + 1):
            out.update((s, e))
        for t in (lo, hi):
            span = self.planned.shift_at(t)
            if span is not None:
                out.update((int(span.start_us), int(span.end_us)))
        self._last = (lo, hi, tuple(sorted(out)))
        return self._last[2]


def usable(inp: Input) -> bool:
    return inp.good and inp.value is not None
