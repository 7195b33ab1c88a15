"""One machine's data over a range, read once and served for the ranges inside it (OEE per shift or per day
over weeks: a few reads instead of a few per shift)."""

from __future__ import annotations

import bisect
import functools
import itertools
from dataclasses import dataclass

import numpy as np

from plantlink.store.records import Lost


@dataclass(frozen=True)
class Preloaded:
    """One machine's data over a range, read once, served for the ranges inside it exactly as the store and
    the historian answer them (intervals clipped, samples in ``[start, end)``, cuts in ``[start, end)``)."""

    states: list[tuple[int, int, str]]
    counters: dict[str, tuple[np.ndarray, np.ndarray]]
    all_cuts: list[int]

    def intervals(self, start: int, end: int) -> list[tuple[int, int, str]]:
        lo = bisect.bisect_right(self.ends, start)  # one machine's intervals: in time order, not overlapping
        hi = bisect.bisect_left(self.starts, end)
        clipped = ((max(s, start), min(e, end), st) for s, e, st in self.states[lo:hi])
        return [(s, e, st) for s, e, st in clipped if e > s]

    @functools.cached_property
    def starts(self) -> list[int]:
        return [s for s, _, _ in self.states]

    @functools.cached_property
    def ends(self) -> list[int]:
        """The latest end so far (sorted even if intervals overlapped)."""
        return list(itertools.accumulate((e for _, e, _ in self.states), max))

    def counter(self, name: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        ts, v = self.counters[name]
        lo, hi = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "left")
        return ts[lo:hi], v[lo:hi]

    def cuts(self, start: int, end: int) -> list[int]:
        return [c for c in self.all_cuts if start <= c < end]


class Losses:
    """A scope's downtime losses over a range, read once, served for the ranges inside it: those overlapping
    ``[start, end)``, found by their start (an event lasts at most as long as the longest one closed)."""

    def __init__(self, items: list[Lost]) -> None:
        self.closed = sorted((x for x in items if x.end_us is not None), key=lambda x: x.start_us)
        self.open = [x for x in items if x.end_us is None]
        self.starts = [x.start_us for x in self.closed]
        self.longest = max((x.end_us - x.start_us for x in self.closed if x.end_us is not None), default=0)

    def overlapping(self, start: int, end: int) -> list[Lost]:
        lo = bisect.bisect_left(self.starts, start - self.longest)
        hi = bisect.bisect_left(self.starts, end)
        found = [x for x in self.closed[lo:hi] if x.end_us is not None and x.end_us > start]
        return found + [x for x in self.open if x.start_us < end]
