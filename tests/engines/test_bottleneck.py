"""The line constraint by the active-period method, on crafted lines whose answer is known by construction."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from plantlink.engines.bottleneck import active_periods, analyse
from plantlink.store import Interval, Store, default_url
from tests.store.plants import LINE, MONDAY, S, plant

T0 = MONDAY + 8 * 3600 * S
PRESS, WELDER, ROBOT = f"{LINE}/press", f"{LINE}/welder", f"{LINE}/robot"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(default_url(tmp_path))


def record(store: Store, machine: str, steps: list[tuple[int, str]], end_s: int) -> None:
    """steps: (second after T0, state) in order; the last interval closes at end_s."""
    for sec, state in steps:
        store.open_interval(machine, LINE, state, T0 + sec * S)
    store.close_interval(machine, T0 + end_s * S)


def test_the_slow_middle_machine_constrains_a_three_machine_line(store: Store) -> None:
    # press feeds welder feeds robot. The welder never waits (it runs, or is faulted 30 s: still active);
    # the press is blocked half the time behind it, the robot starved 30 s of every 100 s.
    record(store, PRESS, [(c * 100 + off, st) for c in range(6) for off, st in ((0, "running"), (50, "blocked"))], 600)
    record(store, WELDER, [(0, "running"), (200, "faulted"), (230, "running")], 600)
    record(store, ROBOT, [(c * 100 + off, st) for c in range(6) for off, st in ((0, "starved"), (30, "running"))], 600)
    got = analyse(store, plant(), LINE, T0, T0 + 600 * S)
    assert got.bottleneck == WELDER
    assert got.ranking == (WELDER, ROBOT, PRESS)
    m = got.machines
    assert (m[PRESS].active_periods, m[PRESS].mean_active_s) == (6, 50.0)
    assert (m[WELDER].active_periods, m[WELDER].mean_active_s) == (1, 600.0)
    assert (m[ROBOT].active_periods, m[ROBOT].mean_active_s) == (6, 70.0)
    assert m[PRESS].shares == pytest.approx({"running": 0.5, "blocked": 0.5, "no_data": 0.0})
    assert m[WELDER].shares == pytest.approx({"running": 570 / 600, "faulted": 30 / 600, "no_data": 0.0})
    assert m[ROBOT].shares == pytest.approx({"running": 0.7, "starved": 0.3, "no_data": 0.0})
    assert m[WELDER].seconds == {"faulted": 30.0, "running": 570.0}
    # the welder's 600 s period is the longest at every instant: sole momentary bottleneck all the time
    assert [(m[x].momentary_sole, m[x].momentary_shifting) for x in (PRESS, WELDER, ROBOT)] == [
        (0.0, 0.0), (1.0, 0.0), (0.0, 0.0)]
    assert got.explanation == (
        "welder constrains the line: its average uninterrupted active period, 600 s, is the longest; "
        "next: robot, 70 s; it was the sole momentary bottleneck 100% of the time")
    assert got.tied == ()
    assert m[PRESS].explanation.startswith("active 50% of the time in 6 periods averaging 50 s (longest 50 s)")
    assert "blocked 50%" in m[PRESS].explanation


def test_shifting_bottleneck_where_active_periods_overlap(store: Store) -> None:
    # press active 0-100 s then starved; welder starved until 50 s then active to 200 s; robot has no data.
    # Momentary bottleneck: press on 0-50 (only one active), welder on 50-200 (150 s period > 100 s);
    # the two periods overlap on 50-100: shifting there. Sole: press 50 s, welder 100 s.
    record(store, PRESS, [(0, "running"), (100, "starved")], 200)
    record(store, WELDER, [(0, "starved"), (50, "running")], 200)
    got = analyse(store, plant(), LINE, T0, T0 + 200 * S)
    m = got.machines
    assert got.bottleneck == WELDER
    assert (m[PRESS].momentary_sole, m[PRESS].momentary_shifting) == (0.25, 0.25)
    assert (m[WELDER].momentary_sole, m[WELDER].momentary_shifting) == (0.5, 0.25)
    assert (m[ROBOT].momentary_sole, m[ROBOT].active_periods, m[ROBOT].shares) == (0.0, 0, {"no_data": 1.0})


def test_planned_stops_unknown_and_gaps_interrupt_active_periods() -> None:
    def iv(s: int, e: int, state: str) -> Interval:
        return Interval(0, WELDER, LINE, state, s, e, None)

    ivs = [iv(0, 10, "running"), iv(10, 20, "faulted"), iv(20, 30, "planned_stop"), iv(30, 40, "idle"),
           iv(40, 45, "unknown"), iv(45, 50, "running"), iv(60, 70, "changeover"), iv(70, 80, "blocked")]
    assert active_periods(ivs) == [(0, 20), (30, 40), (45, 50), (60, 70)]


def test_open_intervals_count_up_to_now_and_errors_are_clear(store: Store) -> None:
    store.open_interval(WELDER, LINE, "running", T0)
    got = analyse(store, plant(), LINE, T0, T0 + 100 * S, now_us=T0 + 40 * S)
    assert got.machines[WELDER].shares == pytest.approx({"running": 0.4, "no_data": 0.6})
    assert analyse(store, plant(), LINE, T0 + 200 * S, T0 + 300 * S, now_us=T0 + 150 * S).bottleneck is None
    with pytest.raises(ValueError, match=r"line 's1/a1/l9' has no machine with state rules \(known lines: s1/a1/l1\)"):
        analyse(store, plant(), "s1/a1/l9", T0, T0 + S)
    with pytest.raises(ValueError, match="reversed"):
        analyse(store, plant(), LINE, T0, T0)


def test_the_analysis_is_frozen_and_encodes_to_the_api_json_in_its_order(store: Store) -> None:
    record(store, WELDER, [(0, "running")], 100)
    got = analyse(store, plant(), LINE, T0, T0 + 100 * S)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.bottleneck = PRESS  # type: ignore[misc]
    doc = json.loads(json.dumps(dataclasses.asdict(got)))
    assert list(doc) == ["line", "start_us", "end_us", "period_s", "method", "bottleneck", "ranking", "explanation",
                         "machines", "tied"]
    assert list(doc["machines"][WELDER]) == ["shares", "seconds", "active_share", "active_periods", "mean_active_s",
                                             "longest_active_s", "momentary_sole", "momentary_shifting", "explanation"]
    assert doc["bottleneck"] == WELDER and doc["ranking"][0] == WELDER


def test_equal_active_periods_are_reported_as_a_tie(store: Store) -> None:
    # press and welder each run 0-100 s then are starved; the robot runs 30 s: press and welder tie at 100 s
    record(store, PRESS, [(0, "running"), (100, "starved")], 200)
    record(store, WELDER, [(0, "running"), (100, "starved")], 200)
    record(store, ROBOT, [(0, "running"), (30, "starved")], 200)
    got = analyse(store, plant(), LINE, T0, T0 + 200 * S)
    assert set(got.tied) == {PRESS, WELDER}
    assert " tie: " in got.explanation and "no single constraint" in got.explanation
    assert "press" in got.explanation and "welder" in got.explanation and LINE not in got.explanation
