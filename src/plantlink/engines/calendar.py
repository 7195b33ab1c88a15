"""Shift calendar: planned busy time (ISO 22400-2 PBT) from a site's shifts, breaks and holidays.

All instants are integer microseconds since the Unix epoch (UTC), ``*_us``; ranges are half-open
``[start_us, end_us)``. Shift and break times are wall-clock times in the site's time zone, so a shift
22:00-06:00 lasts 9 h on the night the clocks go back and 7 h on the night they spring forward.
A wall-clock time that does not exist (inside the spring-forward gap) is read with the offset in force
before the gap (02:30 becomes 03:30); an ambiguous one (fall back) is its first occurrence.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from plantlink.model.production import WEEKDAYS, Calendar, Shift

if TYPE_CHECKING:
    from plantlink.model.schema import Site

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)
_DAY_CACHE_MAX = 4096
#: the occurrences and planned ranges kept (a year of three shifts a day; a month of spans per machine)
_MEMO = 4096

IntArray = npt.NDArray[np.int64]


def to_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact, no float rounding)."""
    return (moment - _EPOCH) // _US


def _check_range(start_us: int, end_us: int) -> None:
    if end_us < start_us:
        raise ValueError(f"end_us ({end_us}) is before start_us ({start_us}): give the range as [start, end)")


def merge_intervals(starts: npt.ArrayLike, ends: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Sort half-open intervals and merge those that overlap or touch; empty ones are dropped."""
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if s.shape != e.shape:
        raise ValueError(f"starts and ends differ in length ({s.size} and {e.size})")
    keep = e > s
    s, e = s[keep], e[keep]
    if s.size == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    first = np.ones(s.size, dtype=bool)
    first[1:] = s[1:] > reach[:-1]
    heads = np.flatnonzero(first)
    last = np.append(heads[1:] - 1, s.size - 1)
    return s[heads], reach[last]


def overlap_us(starts: IntArray, ends: IntArray, lo: npt.ArrayLike, hi: npt.ArrayLike) -> IntArray:
    """For each window ``[lo[i], hi[i])``, the microseconds covered by the merged intervals ``starts/ends``
    (as returned by :func:`merge_intervals`). Vectorised: a cumulative-coverage function read at both ends."""
    lo_a = np.asarray(lo, dtype=np.int64)
    hi_a = np.asarray(hi, dtype=np.int64)
    if starts.size == 0:
        return np.zeros(lo_a.shape, dtype=np.int64)
    lengths = ends - starts
    before = np.concatenate(([0], np.cumsum(lengths)))

    def covered_until(t: IntArray) -> IntArray:
        k = np.searchsorted(starts, t, side="right") - 1
        kk = np.maximum(k, 0)
        inside = np.clip(t - starts[kk], 0, lengths[kk])
        return np.where(k >= 0, before[kk] + inside, 0)

    covered: IntArray = np.maximum(covered_until(hi_a) - covered_until(lo_a), 0)
    return covered


@dataclass(frozen=True, slots=True)
class ShiftSpan:
    """One occurrence of a shift: its name, the local date it started on, and its instants."""

    name: str
    day: date
    start_us: int
    end_us: int

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6


@dataclass(frozen=True, slots=True)
class _Occurrence:
    span: ShiftSpan
    breaks: tuple[tuple[int, int], ...]  # merged, clipped to the shift

    def busy(self) -> Iterator[tuple[int, int]]:
        """The shift minus its breaks."""
        cursor = self.span.start_us
        for b_start, b_end in self.breaks:
            if b_start > cursor:
                yield cursor, b_start
            cursor = max(cursor, b_end)
        if cursor < self.span.end_us:
            yield cursor, self.span.end_us


class PlannedTime:
    """Planned busy time of a site: shift time minus breaks, without the shifts that start on a holiday.

    A calendar without shifts plans every hour. Overlapping shifts are merged in :meth:`planned`.
    """

    def __init__(self, calendar: Calendar, tz: str) -> None:
        try:
            self._zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {tz!r} (for example America/Toronto)") from None
        self.calendar = calendar
        self.tz = tz
        self._holidays = frozenset(calendar.holidays)
        self._days: dict[date, tuple[int, int, list[int], list[int]]] = {}
        self._last: tuple[int, int, list[int], list[int]] | None = None
        #: occurrences by (day, shift index) and planned arrays by range: pure functions of the calendar,
        #: asked again and again when OEE is computed per shift over weeks (per machine, per span)
        self._occ: dict[tuple[date, int], _Occurrence] = {}
        self._lock = threading.Lock()
        self._arrays: OrderedDict[tuple[int, int], tuple[IntArray, IntArray]] = OrderedDict()

    @classmethod
    def of_site(cls, site: Site) -> PlannedTime:
        return cls(site.calendar, site.timezone)

    @property
    def always(self) -> bool:
        """True when the calendar has no shifts: every hour is planned."""
        return not self.calendar.shifts

    # -- occurrences -------------------------------------------------------------------------

    def _local_date(self, ts_us: int) -> date:
        return (_EPOCH + timedelta(microseconds=ts_us)).astimezone(self._zone).date()

    def _at(self, day: date, clock: time) -> int:
        return to_us(datetime.combine(day, clock, tzinfo=self._zone))

    def _occurrence(self, day: date, shift: Shift) -> _Occurrence:
        crosses = shift.end < shift.start
        start = self._at(day, shift.start)
        end = self._at(day + _DAY if crosses else day, shift.end)
        pieces: list[tuple[int, int]] = []
        for brk in shift.breaks:
            if brk.start == brk.end:
                continue
            b_day = day + _DAY if crosses and brk.start < shift.start else day
            b_start = max(self._at(b_day, brk.start), start)
            b_end = min(self._at(b_day + _DAY if brk.end < brk.start else b_day, brk.end), end)
            if b_end > b_start:
                pieces.append((b_start, b_end))
        m_start, m_end = merge_intervals([p[0] for p in pieces], [p[1] for p in pieces])
        breaks = tuple(zip(m_start.tolist(), m_end.tolist(), strict=True))
        return _Occurrence(ShiftSpan(shift.name, day, start, end), breaks)

    def _occurrence_of(self, day: date, i: int) -> _Occurrence:
        occ = self._occ.get((day, i))
        if occ is None:
            if len(self._occ) >= _MEMO:
                self._occ.clear()
            occ = self._occ[(day, i)] = self._occurrence(day, self.calendar.shifts[i])
        return occ

    def _occurrences(self, start_us: int, end_us: int) -> list[_Occurrence]:
        """Every (unclipped) shift occurrence overlapping [start_us, end_us), by start."""
        if end_us <= start_us or self.always:
            return []
        found: list[_Occurrence] = []
        day = self._local_date(start_us) - _DAY  # a night shift of the day before may reach into the range
        last = self._local_date(end_us - 1)
        while day <= last:
            if day not in self._holidays:
                weekday = WEEKDAYS[day.weekday()]
                for i, shift in enumerate(self.calendar.shifts):
                    if weekday in shift.days:
                        occ = self._occurrence_of(day, i)
                        if occ.span.end_us > start_us and occ.span.start_us < end_us:
                            found.append(occ)
            day += _DAY
        found.sort(key=lambda o: (o.span.start_us, o.span.end_us))
        return found

    # -- public queries ----------------------------------------------------------------------

    def shifts(self, start_us: int, end_us: int) -> list[ShiftSpan]:
        """Shift occurrences overlapping the range, clipped to it, by start (breaks not removed).
        Shifts that start on a holiday are not worked and are not listed."""
        _check_range(start_us, end_us)
        return [
            ShiftSpan(o.span.name, o.span.day, max(o.span.start_us, start_us), min(o.span.end_us, end_us))
            for o in self._occurrences(start_us, end_us)
        ]

    def shift_at(self, ts_us: int) -> ShiftSpan | None:
        """The whole shift occurrence (not clipped) that contains ``ts_us``; when shifts overlap, the one that
        started last (the incoming crew). None outside shifts, on holidays and for a calendar without shifts."""
        spans = [o.span for o in self._occurrences(ts_us, ts_us + 1)]
        return spans[-1] if spans else None

    def planned_arrays(self, start_us: int, end_us: int) -> tuple[IntArray, IntArray]:
        """:meth:`planned` as two int64 arrays (starts, ends), read-only (the last ranges asked are kept)."""
        _check_range(start_us, end_us)
        key = (start_us, end_us)
        with self._lock:  # the services call from several threads
            hit = self._arrays.get(key)
            if hit is not None:
                self._arrays.move_to_end(key)
                return hit
        starts, ends = self._planned_arrays(start_us, end_us)
        starts.flags.writeable = ends.flags.writeable = False
        with self._lock:
            self._arrays[key] = (starts, ends)
            if len(self._arrays) > _MEMO:
                self._arrays.popitem(last=False)
        return starts, ends

    def _planned_arrays(self, start_us: int, end_us: int) -> tuple[IntArray, IntArray]:
        if end_us == start_us:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        if self.always:
            return np.array([start_us], dtype=np.int64), np.array([end_us], dtype=np.int64)
        busy = [piece for occ in self._occurrences(start_us, end_us) for piece in occ.busy()]
        starts = np.array([b[0] for b in busy], dtype=np.int64)
        ends = np.array([b[1] for b in busy], dtype=np.int64)
        return merge_intervals(np.maximum(starts, start_us), np.minimum(ends, end_us))

    def planned(self, start_us: int, end_us: int) -> list[tuple[int, int]]:
        """Planned busy intervals within the range: sorted, non-overlapping, merged, clipped."""
        starts, ends = self.planned_arrays(start_us, end_us)
        return list(zip(starts.tolist(), ends.tolist(), strict=True))

    def planned_seconds(self, start_us: int, end_us: int) -> float:
        starts, ends = self.planned_arrays(start_us, end_us)
        return int((ends - starts).sum()) / 1e6

    def is_planned(self, ts_us: int) -> bool:
        """Whether ``ts_us`` is in planned busy time. Cheap when called repeatedly: the planned intervals
        of each local day are computed once and cached."""
        if self.always:
            return True
        day = self._last
        if day is None or not day[0] <= ts_us < day[1]:
            day = self._day(ts_us)
        _, _, starts, ends = day
        k = bisect_right(starts, ts_us) - 1
        return k >= 0 and ts_us < ends[k]

    def _day(self, ts_us: int) -> tuple[int, int, list[int], list[int]]:
        local = self._local_date(ts_us)
        cached = self._days.get(local)
        if cached is None:
            lo, hi = self._at(local, _MIDNIGHT), self._at(local + _DAY, _MIDNIGHT)
            if not lo <= ts_us < hi:  # a repeated hour around a midnight that falls back: no day cache
                starts, ends = self.planned_arrays(ts_us, ts_us + 1)
                return ts_us, ts_us + 1, starts.tolist(), ends.tolist()
            starts, ends = self.planned_arrays(lo, hi)
            if len(self._days) >= _DAY_CACHE_MAX:
                self._days.clear()
            cached = self._days[local] = (lo, hi, starts.tolist(), ends.tolist())
        self._last = cached
        return cached

    def is_planned_many(self, ts_us: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Vectorised :meth:`is_planned` for an array of instants (any order)."""
        ts = np.asarray(ts_us, dtype=np.int64)
        if ts.size == 0:
            return np.zeros(ts.shape, dtype=bool)
        if self.always:
            return np.ones(ts.shape, dtype=bool)
        starts, ends = self.planned_arrays(int(ts.min()), int(ts.max()) + 1)
        k = np.searchsorted(starts, ts, side="right") - 1
        inside = k >= 0
        result = np.zeros(ts.shape, dtype=bool)
        result[inside] = ts[inside] < ends[k[inside]]
        return result
