"""Named periods and shift resolution: ONE rule for the API, the HMI and the CLI.

A named period ends now (or at ``now``) and starts, in the site's calendar and time zone:

* ``today``: at the site's local midnight;
* ``shift``: when the current shift of the site's calendar began; **with no shift running, at local
  midnight** (as ``today``). (The HMI used to start it 8 h ago; the API's rule was kept: see docs/oee.md.)
* ``8h``, ``24h``, ``7d``: that long ago.

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
_HOURS = {"8h": 8, "24h": 24, "7d": 24 * 7}
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
