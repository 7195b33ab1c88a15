"""Named periods and shift resolution: ONE rule for the API, the HMI and the CLI.

A named period ends now (or at ``now``) and starts, in the site's calendar and time zone:

* ``today``: at the site's local midnight;
* ``shift``: when the current shift of the site's calendar began; **with no shift running, at local
  midnight** (as ``today``). (The HMI used to start it 8 h ago; the API's rule was kept: see docs/oee.md.)
* ``8h``, ``24h``, ``7d``: that long ago.

The HMI's range picker adds presets (``PRESETS``: ``30d``, ``yesterday``, ``prevshift``; see ``Periods.preset``)
and compares a range with the period of equal length just before it (``previous_period``).

A custom range is ``[start, end)`` in epoch microseconds, checked by ``plant.check_range``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo

from plantlink.engines.calendar import PlannedTime, to_us
from plantlink.errors import QueryError
from plantlink.samples import now_us

#: Periods the live OEE of the API takes (``period=``).
LIVE_PERIODS = ("today", "shift")
#: Every named period, with the label the HMI shows.
PERIODS: Mapping[str, str] = {"today": "Today", "shift": "Current shift", "8h": "Last 8 h", "24h": "Last 24 h",
                              "7d": "Last 7 days"}
#: The presets of the HMI's range picker: every named period, then closed ones (see :meth:`Periods.preset`).
PRESETS: Mapping[str, str] = {"shift": "Current shift", "prevshift": "Previous shift", "today": "Today",
                              "yesterday": "Yesterday", "8h": "Last 8 h", "24h": "Last 24 h", "7d": "Last 7 days",
                              "30d": "Last 30 days"}
_HOURS = {"8h": 8, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
_HOUR_US = 3600 * 1_000_000


@dataclass(frozen=True)
class Period:
    name: str
    start_us: int
    end_us: int


class Periods:
    """Resolves named periods at each site (time zone and shift calendar)."""

    def __init__(self, zones: Mapping[str, str], planned: Mapping[str, PlannedTime]):
        self.zones = dict(zones)
        self.planned = dict(planned)

    def midnight(self, site: str, at_us: int) -> int:
        zone = ZoneInfo(self.zones[site])
        day = datetime.fromtimestamp(at_us / 1e6, tz=zone).date()
        return to_us(datetime.combine(day, dtime(0, 0), tzinfo=zone))

    def bounds(self, site: str, period: str, now: int | None = None, *,
               allowed: tuple[str, ...] | None = None) -> tuple[int, int]:
        """``[start, now)`` of ``period`` at ``site``; ``QueryError`` (field ``period``) for another name."""
        names = tuple(PERIODS) if allowed is None else allowed
        if period not in names:
            raise QueryError(f"period must be one of {list(names)}, got {period!r}", field="period")
        t = now_us() if now is None else now
        if period in _HOURS:
            return t - _HOURS[period] * _HOUR_US, t
        if period == "shift":
            span = self.planned[site].shift_at(t)
            if span is not None:
                return int(span.start_us), t
        return self.midnight(site, t), t

    def resolve(self, site: str, period: str, now: int | None = None) -> Period:
        start, end = self.bounds(site, period, now)
        return Period(period, start, end)

    def preset(self, site: str, name: str, now: int | None = None) -> tuple[int, int]:
        """``[start, end)`` of a picker preset (``PRESETS``) at ``site``: a named period (ending now), ``30d``
        (ending now), ``yesterday`` (the previous local day, midnight to midnight) or ``prevshift`` (the last
        shift that began before the current one, or before now when none runs; yesterday for a calendar
        without shifts). ``QueryError`` (field ``period``) for another name."""
        if name not in PRESETS:
            raise QueryError(f"period must be one of {list(PRESETS)}, got {name!r}", field="period")
        t = now_us() if now is None else now
        if name == "30d":
            return t - _HOURS[name] * _HOUR_US, t
        if name in PERIODS:
            return self.bounds(site, name, t)
        today = self.midnight(site, t)
        yesterday = self.midnight(site, today - 12 * _HOUR_US)
        if name == "prevshift":
            planned = self.planned[site]
            current = planned.shift_at(t)
            before = current.start_us if current is not None else t
            earlier = [s for s in planned.shifts(before - 8 * 24 * _HOUR_US, before) if s.start_us < before]
            if earlier:
                return int(earlier[-1].start_us), int(earlier[-1].end_us)
        return yesterday, today


def previous_period(start_us: int, end_us: int) -> tuple[int, int]:
    """The period of equal length just before ``[start, end)``: what "compare with the previous period" shows."""
    return 2 * start_us - end_us, start_us
