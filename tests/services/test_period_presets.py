"""The range picker's presets and the previous period (issue 10, item 9), resolved by the services in the site's
zone and shift calendar. Expected instants are written out by hand from the demo plant's calendars (Windsor:
America/Toronto, shifts 06-14, 14-22, 22-06 every day; Detroit: America/Detroit, 07:00-15:30 and 15:30-24:00
on weekdays)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plantlink.errors import QueryError
from plantlink.model import Plant, parse_plant
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues
from plantlink.services.periods import PERIODS, PRESETS, previous_period

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
TORONTO = ZoneInfo("America/Toronto")
DETROIT = ZoneInfo("America/Detroit")
HOUR_US = 3600 * 1_000_000


def _us(y: int, mo: int, d: int, h: int, mi: int = 0, tz: ZoneInfo = TORONTO) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=tz).timestamp() * 1_000_000)


@pytest.fixture(scope="module")
def services() -> Services:
    plant: Plant = parse_plant(DEMO.read_text(encoding="utf-8"), str(DEMO))
    nothing = Components(*(lambda: None for _ in range(8)))
    return Services.build(plant, {t.path: i for i, t in enumerate(plant.tags)}, LatestValues(), nothing)


def test_every_named_period_is_a_preset_resolved_as_the_period(services: Services) -> None:
    t = _us(2026, 11, 24, 9, 30)
    assert set(PERIODS) <= set(PRESETS)
    for name in PERIODS:
        assert services.periods.preset("windsor", name, t) == services.periods.bounds("windsor", name, t), name


@pytest.mark.parametrize(("name", "now", "expected"), [
    ("30d", _us(2026, 11, 24, 9, 30), (_us(2026, 11, 24, 9, 30) - 720 * HOUR_US, _us(2026, 11, 24, 9, 30))),
    ("yesterday", _us(2026, 11, 24, 9, 30), (_us(2026, 11, 23, 0), _us(2026, 11, 24, 0))),
    # the day after the end of daylight saving time in Toronto (1 Nov 2026): yesterday had 25 hours
    ("yesterday", _us(2026, 11, 2, 5, 0), (_us(2026, 11, 1, 0), _us(2026, 11, 2, 0))),
    # 09:30 is in A-days (06-14): the previous shift is the night before, C-nights 22:00-06:00
    ("prevshift", _us(2026, 11, 24, 9, 30), (_us(2026, 11, 23, 22), _us(2026, 11, 24, 6))),
    ("prevshift", _us(2026, 11, 24, 14, 0), (_us(2026, 11, 24, 6), _us(2026, 11, 24, 14))),
])
def test_closed_presets_at_windsor(services: Services, name: str, now: int, expected: tuple[int, int]) -> None:
    assert services.periods.preset("windsor", name, now) == expected


def test_the_previous_shift_when_none_runs(services: Services) -> None:
    """Detroit at 03:00 on Tuesday 24 Nov 2026: no shift runs; the last one was Monday's afternoon shift."""
    night = _us(2026, 11, 24, 3, 0, DETROIT)
    assert services.periods.preset("detroit", "prevshift", night) == (_us(2026, 11, 23, 15, 30, DETROIT),
                                                                      _us(2026, 11, 24, 0, 0, DETROIT))
    day = _us(2026, 11, 24, 10, 0, DETROIT)  # in Tuesday's day shift: the one before is Monday's afternoon
    assert services.periods.preset("detroit", "prevshift", day)[0] == _us(2026, 11, 23, 15, 30, DETROIT)


def test_an_unknown_preset_is_refused_naming_the_field(services: Services) -> None:
    with pytest.raises(QueryError) as err:
        services.periods.preset("windsor", "fortnight")
    assert err.value.field == "period" and "fortnight" in str(err.value)


@pytest.mark.parametrize(("start", "end", "expected"), [
    (1_000, 1_600, (400, 1_000)),
    (_us(2026, 11, 24, 6), _us(2026, 11, 24, 14), (_us(2026, 11, 23, 22), _us(2026, 11, 24, 6))),
    (_us(2026, 11, 24, 0), _us(2026, 11, 24, 9, 30), (_us(2026, 11, 23, 14, 30), _us(2026, 11, 24, 0))),
])
def test_the_previous_period_has_the_same_length_and_ends_where_the_range_starts(
        start: int, end: int, expected: tuple[int, int]) -> None:
    assert previous_period(start, end) == expected
