"""The range a page shows, read from its address and checked in one pure function (:func:`check`).

A range is a preset (``?period=today``, see ``services.periods.PRESETS``; ``?range=`` is read alike for the old
links of the OEE-over-time page) or ``?from=...&to=...``, each either

* a local date ``2026-11-20`` (``from``: its midnight; ``to``: the end of that day, so both days are in),
* a local time ``2026-11-20T06:00`` (seconds optional), in the site's zone, or
* microseconds since the epoch (the links of the alarm summary to a machine's trend);

without ``to`` the range ends now. ``&compare=1`` adds the previous period of equal length. A range is refused
(:class:`RangeError`, with the words to show) when it is unreadable, reversed, empty, starts in the future, or
is longer than the page allows (:class:`Limits`); one that ends in the future ends now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from plantlink.services.periods import PRESETS, Periods, previous_period

DAY_US = 86400 * 1_000_000
#: The nominal length of each preset, to leave out those longer than a page allows.
PRESET_US = {"shift": DAY_US // 2, "prevshift": DAY_US // 2, "today": DAY_US, "yesterday": DAY_US + 3600_000_000,
             "8h": DAY_US // 3, "24h": DAY_US, "7d": 7 * DAY_US, "30d": 30 * DAY_US}


class RangeError(ValueError):
    """A range a page refuses, with the words to show (which bound, and why)."""


@dataclass(frozen=True)
class Limits:
    """What one page allows: the longest range, its default preset and whether it compares periods."""

    max_days: int
    default: str
    compare: bool = True

    @property
    def max_us(self) -> int:
        return self.max_days * DAY_US

    @property
    def presets(self) -> dict[str, str]:
        return {k: v for k, v in PRESETS.items() if PRESET_US[k] <= self.max_us}


@dataclass(frozen=True)
class Picked:
    """The range a page shows: ``[start_us, end_us)``, the preset it came from (None: from/to) and the text
    the from/to were given as (to write them back into the address)."""

    start_us: int
    end_us: int
    preset: str | None = None
    first: str = ""
    last: str = ""
    compare: bool = False

    @property
    def previous(self) -> tuple[int, int]:
        """The period of equal length just before (``services.periods.previous_period``)."""
        return previous_period(self.start_us, self.end_us)

    def query(self, compare: bool | None = None) -> dict[str, str]:
        """The address's query for this range (``compare`` overrides the range's own)."""
        q = {"period": self.preset} if self.preset else {"from": self.first, **({"to": self.last} if self.last else {})}
        return {**q, **({"compare": "1"} if (self.compare if compare is None else compare) else {})}


def instant(text: str, tz: str, *, end: bool = False) -> int:
    """Epoch microseconds of a bound as written (see the module docstring); ``ValueError`` when unreadable.
    A date alone is its local midnight, or for an ``end``, the next one (the day is included)."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    zone = ZoneInfo(tz)
    if len(t) == 10:
        d = date.fromisoformat(t) + timedelta(days=1 if end else 0)
        return int(datetime.combine(d, dtime(0, 0), tzinfo=zone).timestamp() * 1_000_000)
    moment = datetime.fromisoformat(t)
    if moment.tzinfo is not None:
        raise ValueError("give a local time, without a zone")
    return int(moment.replace(tzinfo=zone).timestamp() * 1_000_000)


def check(start_us: int, end_us: int, now_us: int, limits: Limits) -> tuple[int, int]:
    """The range as shown (ending now at the latest), or ``RangeError`` naming why it is refused: reversed,
    empty, starting in the future, or longer than ``limits.max_days``."""
    if end_us < start_us:
        raise RangeError("The range is reversed: 'To' is before 'From'.")
    if end_us == start_us:
        raise RangeError("The range is empty: 'From' and 'To' are the same time.")
    if start_us >= now_us:
        raise RangeError("The range starts in the future: 'From' is after now.")
    if end_us - start_us > limits.max_us:
        days = (end_us - start_us) / DAY_US
        raise RangeError(f"The range is too long for this page: {days:.3g} days, at most {limits.max_days}.")
    return start_us, min(end_us, now_us)


def custom(first: str, last: str | None, tz: str, now_us: int, limits: Limits, compare: bool = False) -> Picked:
    """A from/to range typed or linked, checked (``RangeError`` when refused)."""
    where = "From"
    try:
        if not first.strip():
            raise ValueError("empty")
        start = instant(first, tz)
        where = "To"
        end = instant(last, tz, end=True) if last and last.strip() else now_us
    except ValueError:
        raise RangeError(f"'{where}' is not a time: write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM "
                         f"(in {tz}).") from None
    start, end = check(start, end, now_us, limits)
    return Picked(start, end, None, first.strip(), (last or "").strip(), compare)


def preset(periods: Periods, site: str, name: str, now_us: int, limits: Limits, compare: bool = False) -> Picked:
    """A preset of the page, resolved by the services (``RangeError`` for one the page does not offer)."""
    offered = limits.presets
    if name not in offered:
        raise RangeError(f"Unknown period {name!r}: choose one of {', '.join(offered.values())}.")
    start, end = periods.preset(site, name, now_us)
    return Picked(start, end, name, compare=compare)


def from_query(periods: Periods, site: str, tz: str, q: Mapping[str, str], now_us: int, limits: Limits
               ) -> tuple[Picked, str | None]:
    """The range an address asks for, and None; or the page's default and the reason the asked one is
    refused (the page says it and shows its default rather than failing)."""
    compare = limits.compare and q.get("compare", "") in ("1", "true", "on")
    try:
        if q.get("from") or q.get("to"):
            return custom(q.get("from", ""), q.get("to"), tz, now_us, limits, compare), None
        name = q.get("period") or q.get("range") or limits.default
        return preset(periods, site, name, now_us, limits, compare), None
    except RangeError as exc:
        return preset(periods, site, limits.default, now_us, limits, compare), str(exc)


def local_input(ts_us: int, tz: str) -> str:
    """An instant as a ``datetime-local`` input shows it: ``2026-11-20T06:00`` in the site's zone."""
    return datetime.fromtimestamp(ts_us / 1e6, ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")
