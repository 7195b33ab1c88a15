"""Machine states: each machine's state now, and a machine's state intervals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from plantlink.errors import Unavailable
from plantlink.identity import Caller
from plantlink.samples import now_us
from plantlink.services.deps import StateRecords
from plantlink.services.plant import DEFAULT_PAGE, MAX_RANGE_US_STATES, PlantIndex, check_page, check_range
from plantlink.store.records import Interval

__all__ = ["Interval", "MachineState", "StatesService", "Timeline"]


@dataclass(frozen=True)
class MachineState:
    machine: str
    line: str
    site: str
    state: str
    since_us: int


@dataclass(frozen=True)
class Timeline:
    machine: str
    items: tuple[Interval, ...]
    total: int
    limit: int
    offset: int


class StatesService:
    def __init__(self, index: PlantIndex, current: Callable[[], dict[str, tuple[str, int]]],
                 records: Callable[[], StateRecords | None]):
        self.index, self._current, self._records = index, current, records

    def current(self) -> dict[str, tuple[str, int]]:
        """Every machine's state and since when (machines without state rules are absent); no scoping: for
        the live caches, which show each user only the sites they may see."""
        return self._current()

    def now(self, who: Caller, *, site: str | None = None, line: str | None = None) -> list[MachineState]:
        """Each visible machine's current state and since when."""
        idx = self.index
        if site is not None:
            idx.site(who, site)
        if line is not None:
            idx.line(who, line)
        current = self._current()
        out = []
        for path, m in idx.machines.items():
            if path not in current or not who.can(m.site, "viewer"):
                continue
            if (site is not None and m.site != site) or (line is not None and m.line != line.strip("/")):
                continue
            state, since = current[path]
            out.append(MachineState(path, m.line, m.site, state, since))
        return out

    def intervals(self, who: Caller, machine: str, start_us: int, end_us: int, *,
                  open_until: int | None = None) -> list[Interval]:
        """The machine's state intervals overlapping the range, clipped to it; the open one ends at
        ``open_until`` (default: now)."""
        m = self.index.machine(who, machine)
        records = self._records()
        if records is None:
            return []
        return records.intervals(start_us, end_us, machines=[m.path],
                                 open_until=now_us() if open_until is None else open_until)

    def timeline(self, who: Caller, machine: str, start_us: int, end_us: int, *, limit: int = DEFAULT_PAGE,
                 offset: int = 0) -> Timeline:
        """A page of :meth:`intervals` (the open one ends now)."""
        check_range(start_us, end_us, MAX_RANGE_US_STATES)
        check_page(limit, offset)
        m = self.index.machine(who, machine)
        if self._records() is None:
            raise Unavailable("the relational store is not open")
        ivs = self.intervals(who, m.path, start_us, end_us)
        return Timeline(m.path, tuple(ivs[offset:offset + limit]), len(ivs), limit, offset)
