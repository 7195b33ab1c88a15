"""The range picker's parsing and checking (issue 10, item 9), without a browser: one table of ranges, each
with what the page does with it (shown as which instants, or refused naming why). Instants are written out by
hand in America/Toronto (EST, UTC-05:00 in November 2026)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from plantlink.engines.oee import OeeResult
from plantlink.hmi.rangepick import versus
from plantlink.hmi.timerange import Limits, Picked, RangeError, check, custom, from_query, instant, local_input
from plantlink.model import parse_plant
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues

TZ = "America/Toronto"
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
LINE = Limits(max_days=31, default="today")
MACHINE = Limits(max_days=7, default="8h", compare=False)
MIN_US = 60 * 1_000_000


def utc(*a: int) -> int:
    """An instant given in UTC (Toronto + 5 h in November)."""
    return int(datetime(*a, tzinfo=UTC).timestamp() * 1_000_000)


NOW = utc(2026, 11, 27, 15, 0)  # 10:00 in Toronto


@pytest.fixture(scope="module")
def services() -> Services:
    plant = parse_plant(DEMO.read_text(encoding="utf-8"), str(DEMO))
    nothing = Components(*(lambda: None for _ in range(8)))
    return Services.build(plant, {t.path: i for i, t in enumerate(plant.tags)}, LatestValues(), nothing)


@pytest.mark.parametrize(("first", "last", "limits", "expected"), [
    # local times: 06:00 Toronto is 11:00 UTC
    ("2026-11-26T06:00", "2026-11-26T14:00", LINE, (utc(2026, 11, 26, 11), utc(2026, 11, 26, 19))),
    # dates: from midnight, to the end of the last day (both days included)
    ("2026-11-20", "2026-11-21", LINE, (utc(2026, 11, 20, 5), utc(2026, 11, 22, 5))),
    ("2026-11-26", "2026-11-26", LINE, (utc(2026, 11, 26, 5), utc(2026, 11, 27, 5))),  # one day: not empty
    # a range ending in the future ends now
    ("2026-11-27T08:00", "2026-11-27T12:00", LINE, (utc(2026, 11, 27, 13), NOW)),
    # microseconds since the epoch (the alarm summary's trend links); without "to": up to now
    (str(utc(2026, 11, 27, 14)), None, MACHINE, (utc(2026, 11, 27, 14), NOW)),
    # exactly the maximum of the page
    ("2026-11-20T10:00", "2026-11-27T10:00", MACHINE, (utc(2026, 11, 20, 15), NOW)),
])
def test_ranges_shown(first: str, last: str | None, limits: Limits, expected: tuple[int, int]) -> None:
    p = custom(first, last, TZ, NOW, limits)
    assert (p.start_us, p.end_us) == expected
    assert p.preset is None


@pytest.mark.parametrize(("first", "last", "limits", "why"), [
    ("2026-11-26T14:00", "2026-11-26T06:00", LINE, "reversed"),
    ("2026-11-26T06:00", "2026-11-26T06:00", LINE, "empty"),
    ("2026-11-28T06:00", "2026-11-28T08:00", LINE, "future"),
    ("2026-11-27T10:00", "2026-11-27T11:00", LINE, "future"),  # starts at now: nothing to show yet
    ("2026-10-01", "2026-11-26", LINE, "too long for this page: 57 days, at most 31"),
    ("2026-11-19T10:00", "2026-11-27T10:00", MACHINE, "too long for this page: 8 days, at most 7"),
    ("yesterday", "2026-11-26", LINE, "'From' is not a time"),
    ("2026-11-26", "noon", LINE, "'To' is not a time"),
    ("2026-11-26T25:00", "", LINE, "'From' is not a time"),
    ("", "2026-11-26", LINE, "'From' is not a time"),
    ("2026-11-26T06:00+02:00", "", LINE, "'From' is not a time"),  # local times only: the zone is the site's
])
def test_ranges_refused_naming_why(first: str, last: str, limits: Limits, why: str) -> None:
    with pytest.raises(RangeError, match=why):
        custom(first, last, TZ, NOW, limits)


def test_check_is_the_one_rule() -> None:
    assert check(NOW - MIN_US, NOW + MIN_US, NOW, LINE) == (NOW - MIN_US, NOW)
    with pytest.raises(RangeError, match="reversed"):
        check(NOW - MIN_US, NOW - 2 * MIN_US, NOW, LINE)


def test_instants_and_inputs_round_trip() -> None:
    t = utc(2026, 11, 26, 11, 30)
    assert local_input(t, TZ) == "2026-11-26T06:30"
    assert instant(local_input(t, TZ), TZ) == t
    assert instant("2026-11-26", TZ, end=True) == utc(2026, 11, 27, 5)


def test_an_address_with_a_refused_range_gets_the_default_and_the_reason(services: Services) -> None:
    q = {"from": "2026-11-26T14:00", "to": "2026-11-26T06:00", "compare": "1"}
    picked, why = from_query(services.periods, "windsor", TZ, q, NOW, LINE)
    assert why is not None and "reversed" in why
    assert (picked.preset, picked.start_us, picked.end_us, picked.compare) == ("today", utc(2026, 11, 27, 5), NOW,
                                                                               True)
    picked, why = from_query(services.periods, "windsor", TZ, {"period": "30d"}, NOW, MACHINE)  # not offered
    assert picked.preset == "8h" and why is not None and "Unknown period '30d'" in why
    picked, why = from_query(services.periods, "windsor", TZ, {"range": "yesterday"}, NOW, LINE)  # old links
    assert why is None and (picked.start_us, picked.end_us) == (utc(2026, 11, 26, 5), utc(2026, 11, 27, 5))
    picked, _ = from_query(services.periods, "windsor", TZ, {"period": "shift", "compare": "1"}, NOW, MACHINE)
    assert not picked.compare  # the machine page does not compare


def test_the_previous_period_and_the_address_of_a_range() -> None:
    p = Picked(utc(2026, 11, 27, 11), NOW, "shift", compare=True)  # A-days from 06:00, at 10:00
    assert p.previous == (utc(2026, 11, 27, 7), utc(2026, 11, 27, 11))  # the 4 h before: 02:00 to 06:00
    assert p.query() == {"period": "shift", "compare": "1"}
    assert p.query(compare=False) == {"period": "shift"}
    c = Picked(0, 1, None, "2026-11-26T06:00", "2026-11-26T14:00")
    assert c.query(compare=True) == {"from": "2026-11-26T06:00", "to": "2026-11-26T14:00", "compare": "1"}


def test_presets_longer_than_the_page_allows_are_not_offered() -> None:
    assert "30d" in LINE.presets and "30d" not in MACHINE.presets
    assert list(MACHINE.presets)[:2] == ["shift", "prevshift"]


def _result(oee: float | None, problem: bool = False) -> OeeResult:
    return OeeResult(None, None, None, oee, 0.0, 0.0, 0.0, 0.0, data_problem=problem)


@pytest.mark.parametrize(("now", "before", "text"), [
    (0.712, 0.680, "+3.2 pts"),
    (0.68049, 0.71249, "-3.2 pts"),  # the difference of the figures shown (68.0 % and 71.2 %)
    (0.5, 0.5, "±0.0 pts"),
    (0.71249, 0.71251, "-0.1 pts"),  # 71.2 % vs 71.3 %: as read
    (None, 0.5, "—"),
])
def test_the_change_in_points(now: float | None, before: float | None, text: str) -> None:
    assert versus(_result(now), _result(before)) == text


def test_no_change_from_or_to_a_data_problem() -> None:
    assert versus(_result(0.7, problem=True), _result(0.6)) == "—"
    assert versus(_result(0.7), None) == "—"
