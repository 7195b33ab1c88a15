"""Shift calendar: planned busy time, computed by hand from UTC offsets written out in the comments.

America/Toronto and America/Detroit are UTC-5 (EST) in winter and UTC-4 (EDT) in summer. In 2024 the
clocks spring forward on Sunday 10 March at 02:00 EST and fall back on Sunday 3 November at 02:00 EDT.
Expected instants are written as UTC wall-clock times, so zoneinfo is not used to compute them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from plantlink.engines.calendar import PlannedTime, ShiftSpan, merge_intervals, overlap_us
from plantlink.model.production import Calendar
from plantlink.model.schema import Site

M = 60 * 10**6


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()) * 10**6


def calendar(**kwargs: object) -> Calendar:
    return Calendar.model_validate(kwargs)


DAY_SHIFT = {
    "name": "day",
    "start": "06:00",
    "end": "14:00",
    "breaks": [{"start": "09:00", "end": "09:15"}, {"start": "11:30", "end": "12:00"}],
}


@pytest.fixture
def day_shift() -> PlannedTime:
    return PlannedTime(calendar(shifts=[DAY_SHIFT]), "America/Toronto")


def test_day_shift_with_breaks(day_shift: PlannedTime) -> None:
    # Tuesday 2024-03-12, EDT (UTC-4): 06:00-14:00 local = 10:00Z-18:00Z; breaks 13:00Z-13:15Z, 15:30Z-16:00Z
    start, end = utc(2024, 3, 12), utc(2024, 3, 13)
    assert day_shift.shifts(start, end) == [
        ShiftSpan("day", date(2024, 3, 12), utc(2024, 3, 12, 10), utc(2024, 3, 12, 18))
    ]
    assert day_shift.planned(start, end) == [
        (utc(2024, 3, 12, 10), utc(2024, 3, 12, 13)),
        (utc(2024, 3, 12, 13, 15), utc(2024, 3, 12, 15, 30)),
        (utc(2024, 3, 12, 16), utc(2024, 3, 12, 18)),
    ]
    # 8 h - 15 min - 30 min = 7 h 15 min
    assert day_shift.planned_seconds(start, end) == 7.25 * 3600


def test_range_that_cuts_a_shift(day_shift: PlannedTime) -> None:
    # 08:00-12:00 local = 12:00Z-16:00Z: 12:00Z-13:00Z and 13:15Z-15:30Z planned = 1 h + 2 h 15 min
    start, end = utc(2024, 3, 12, 12), utc(2024, 3, 12, 16)
    assert day_shift.shifts(start, end) == [ShiftSpan("day", date(2024, 3, 12), start, end)]
    assert day_shift.planned(start, end) == [
        (start, utc(2024, 3, 12, 13)),
        (utc(2024, 3, 12, 13, 15), utc(2024, 3, 12, 15, 30)),
    ]
    assert day_shift.planned_seconds(start, end) == 3.25 * 3600


def test_weekend_and_a_week(day_shift: PlannedTime) -> None:
    # Saturday 16 and Sunday 17 March: no shift. Monday 11 to Sunday 17: five shifts of 7.25 h
    assert day_shift.planned(utc(2024, 3, 16, 4), utc(2024, 3, 18, 4)) == []
    week = day_shift.shifts(utc(2024, 3, 11, 4), utc(2024, 3, 18, 4))
    assert [s.day.isoformat() for s in week] == [f"2024-03-{d}" for d in (11, 12, 13, 14, 15)]
    assert day_shift.planned_seconds(utc(2024, 3, 11, 4), utc(2024, 3, 18, 4)) == 5 * 7.25 * 3600


def test_holiday_removes_shifts_starting_that_day() -> None:
    # Night shift Mon-Fri 22:00-06:00 in January (EST, UTC-5); holiday Wednesday 2024-01-17.
    # The Tuesday shift (Tue 22:00 = Wed 03:00Z to Wed 11:00Z) still runs into the holiday morning;
    # the Wednesday shift (Wed 22:00 = Thu 03:00Z) is removed; Thursday's (Fri 03:00Z) remains.
    cal = calendar(shifts=[{"name": "night", "start": "22:00", "end": "06:00"}], holidays=["2024-01-17"])
    planned = PlannedTime(cal, "America/Toronto")
    spans = planned.shifts(utc(2024, 1, 17, 0), utc(2024, 1, 19, 12))
    assert [(s.day, s.start_us, s.end_us) for s in spans] == [
        (date(2024, 1, 16), utc(2024, 1, 17, 3), utc(2024, 1, 17, 11)),
        (date(2024, 1, 18), utc(2024, 1, 19, 3), utc(2024, 1, 19, 11)),
    ]
    assert planned.is_planned(utc(2024, 1, 17, 10))  # holiday morning, Tuesday's shift
    assert not planned.is_planned(utc(2024, 1, 18, 4))  # Wednesday's shift is not worked
    assert planned.shift_at(utc(2024, 1, 18, 4)) is None


def test_night_shift_breaks_after_midnight() -> None:
    # Monday 2024-01-15 22:00 EST = Tue 03:00Z, ends Tue 06:00 EST = 11:00Z.
    # Break 23:45-00:15 crosses midnight: 04:45Z-05:15Z. Break 02:00-02:30 after midnight: 07:00Z-07:30Z.
    shift = {
        "name": "night",
        "start": "22:00",
        "end": "06:00",
        "days": ["mon"],
        "breaks": [{"start": "02:00", "end": "02:30"}, {"start": "23:45", "end": "00:15"}],
    }
    planned = PlannedTime(calendar(shifts=[shift]), "America/Toronto")
    start, end = utc(2024, 1, 15), utc(2024, 1, 17)
    assert planned.planned(start, end) == [
        (utc(2024, 1, 16, 3), utc(2024, 1, 16, 4, 45)),
        (utc(2024, 1, 16, 5, 15), utc(2024, 1, 16, 7)),
        (utc(2024, 1, 16, 7, 30), utc(2024, 1, 16, 11)),
    ]
    assert planned.planned_seconds(start, end) == 7 * 3600  # 8 h - 2 x 30 min
    at_one = planned.shift_at(utc(2024, 1, 16, 6))  # Tue 01:00 local
    assert at_one == ShiftSpan("night", date(2024, 1, 15), utc(2024, 1, 16, 3), utc(2024, 1, 16, 11))
    assert planned.is_planned(utc(2024, 1, 16, 3))
    assert not planned.is_planned(utc(2024, 1, 16, 3) - 1)
    assert not planned.is_planned(utc(2024, 1, 16, 7, 10))
    assert planned.is_planned(utc(2024, 1, 16, 7, 30))
    assert not planned.is_planned(utc(2024, 1, 16, 11))  # end is exclusive


def test_dst_fall_back_night_shift_lasts_nine_hours() -> None:
    # Saturday 2024-11-02 22:00 EDT (UTC-4) = Sun 02:00Z; Sunday 06:00 EST (UTC-5) = 11:00Z: 9 h.
    # Break 03:00-03:30 is after the change: 03:00 EST = 08:00Z.
    shift = {
        "name": "night",
        "start": "22:00",
        "end": "06:00",
        "days": ["sat"],
        "breaks": [{"start": "03:00", "end": "03:30"}],
    }
    planned = PlannedTime(calendar(shifts=[shift]), "America/Toronto")
    start, end = utc(2024, 11, 2, 12), utc(2024, 11, 3, 18)
    [span] = planned.shifts(start, end)
    assert (span.start_us, span.end_us) == (utc(2024, 11, 3, 2), utc(2024, 11, 3, 11))
    assert span.seconds == 9 * 3600
    assert planned.planned(start, end) == [
        (utc(2024, 11, 3, 2), utc(2024, 11, 3, 8)),
        (utc(2024, 11, 3, 8, 30), utc(2024, 11, 3, 11)),
    ]
    assert planned.planned_seconds(start, end) == 8.5 * 3600


def test_dst_spring_forward_night_shift_lasts_seven_hours() -> None:
    # Detroit, Saturday 2024-03-09 22:00 EST (UTC-5) = Sun 03:00Z; Sunday 06:00 EDT (UTC-4) = 10:00Z: 7 h.
    # Break 04:00-04:20 EDT = 08:00Z-08:20Z.
    shift = {
        "name": "night",
        "start": "22:00",
        "end": "06:00",
        "days": ["sat"],
        "breaks": [{"start": "04:00", "end": "04:20"}],
    }
    planned = PlannedTime(calendar(shifts=[shift]), "America/Detroit")
    start, end = utc(2024, 3, 9, 12), utc(2024, 3, 10, 18)
    [span] = planned.shifts(start, end)
    assert (span.start_us, span.end_us, span.seconds) == (utc(2024, 3, 10, 3), utc(2024, 3, 10, 10), 7 * 3600)
    assert planned.planned(start, end) == [
        (utc(2024, 3, 10, 3), utc(2024, 3, 10, 8)),
        (utc(2024, 3, 10, 8, 20), utc(2024, 3, 10, 10)),
    ]
    # the vectorised and the per-instant lookups agree around the change, minute by minute
    ts = np.arange(utc(2024, 3, 10, 2), utc(2024, 3, 10, 11), M, dtype=np.int64)
    many = planned.is_planned_many(ts)
    assert many.tolist() == [planned.is_planned(int(t)) for t in ts]
    assert int(many.sum()) == 7 * 60 - 20


def test_overlapping_shifts_are_merged() -> None:
    # Early 06:00-14:15 and late 14:00-22:00 overlap 15 min: planned is one interval 06:00-22:00.
    # Wednesday 2024-07-10, EDT: 10:00Z-02:00Z next day.
    shifts = [{"name": "early", "start": "06:00", "end": "14:15"}, {"name": "late", "start": "14:00", "end": "22:00"}]
    planned = PlannedTime(calendar(shifts=shifts), "America/Toronto")
    start, end = utc(2024, 7, 10, 4), utc(2024, 7, 11, 4)
    assert [s.name for s in planned.shifts(start, end)] == ["early", "late"]
    assert planned.planned(start, end) == [(utc(2024, 7, 10, 10), utc(2024, 7, 11, 2))]
    assert planned.planned_seconds(start, end) == 16 * 3600
    handover = planned.shift_at(utc(2024, 7, 10, 18, 10))  # 14:10 local: both; the later one wins
    assert handover is not None and handover.name == "late"
    early = planned.shift_at(utc(2024, 7, 10, 17, 59))
    assert early is not None and early.name == "early"


def test_empty_calendar_plans_every_hour() -> None:
    planned = PlannedTime(Calendar(), "UTC")
    start, end = utc(2024, 1, 1), utc(2024, 1, 2)
    assert planned.planned(start, end) == [(start, end)]
    assert planned.planned_seconds(start, end) == 86400
    assert planned.shifts(start, end) == []
    assert planned.shift_at(start) is None
    assert planned.is_planned(start)
    assert planned.is_planned_many(np.array([start, end], dtype=np.int64)).tolist() == [True, True]
    assert planned.planned(start, start) == []


def test_is_planned_many_matches_scalar_over_two_weeks(day_shift: PlannedTime) -> None:
    rng = np.random.default_rng(7)
    ts = rng.integers(utc(2024, 3, 1), utc(2024, 3, 15), size=2000, dtype=np.int64)
    many = day_shift.is_planned_many(ts)
    assert many.tolist() == [day_shift.is_planned(int(t)) for t in ts]
    # independent reference: membership in planned() by a plain loop
    intervals = day_shift.planned(utc(2024, 3, 1), utc(2024, 3, 15))
    assert many.tolist() == [any(s <= t < e for s, e in intervals) for t in ts.tolist()]
    assert 0 < many.sum() < ts.size
    assert day_shift.is_planned_many(np.zeros(0, dtype=np.int64)).shape == (0,)


def test_of_site_and_bad_arguments() -> None:
    site = Site.model_validate({"name": "plant", "timezone": "America/Detroit", "calendar": {"shifts": [DAY_SHIFT]}})
    planned = PlannedTime.of_site(site)
    assert planned.tz == "America/Detroit"
    assert planned.planned_seconds(utc(2024, 3, 12), utc(2024, 3, 13)) == 7.25 * 3600
    with pytest.raises(ValueError, match="before start_us"):
        planned.planned(utc(2024, 3, 13), utc(2024, 3, 12))
    with pytest.raises(ValueError, match="unknown IANA time zone 'Mars/Olympus'"):
        PlannedTime(Calendar(), "Mars/Olympus")


def test_merge_and_overlap_helpers() -> None:
    starts, ends = merge_intervals([5, 0, 10, 30, 12], [8, 3, 20, 30, 25])
    # [0,3) [5,8) [10,20)+[12,25) -> [10,25); [30,30) is empty and dropped
    assert starts.tolist() == [0, 5, 10] and ends.tolist() == [3, 8, 25]
    touching = merge_intervals([0, 3], [3, 6])
    assert touching[0].tolist() == [0] and touching[1].tolist() == [6]
    # windows [2,6): 1 + 1 = 2;  [0,100): 3 + 3 + 15 = 21;  [26,29): 0
    assert overlap_us(starts, ends, [2, 0, 26], [6, 100, 29]).tolist() == [2, 21, 0]
    empty = np.zeros(0, dtype=np.int64)
    assert overlap_us(empty, empty, [0], [10]).tolist() == [0]
