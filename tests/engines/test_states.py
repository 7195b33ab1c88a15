"""Machine states from crafted batches: each rule, their precedence, window timeouts, the shift calendar,
bad quality, the intervals written to a real SQLite store, restart after a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from plantlink.bus import InProcBus
from plantlink.engines.calendar import PlannedTime
from plantlink.engines.states import LAST_US_KEY, StateChange, StateEngine
from plantlink.model import Plant
from plantlink.samples import numeric_batch, text_batch
from plantlink.store import Store, default_url
from tests.store.plants import BAD, GOOD, LINE, MONDAY, SHIFTS, S, batch, plant, tag_ids

H = 3600 * S
PRESS, WELDER, ROBOT = f"{LINE}/press", f"{LINE}/welder", f"{LINE}/robot"
T0 = MONDAY + 8 * H


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(default_url(tmp_path))


def engine(store: Store, p: Plant | None = None, calendar: bool = False, **kw: float) -> StateEngine:
    p = p or plant(SHIFTS if calendar else "")
    planned = {s.name: PlannedTime.of_site(s) for s in p.sites} if calendar else {}
    return StateEngine(p, store, planned, now=lambda: 0, tag_ids=tag_ids(p), **kw)


def timeline(store: Store, machine: str, end_us: int) -> list[tuple[str, float, float | None, str | None]]:
    """(state, start, end) in seconds after T0 for a machine's intervals up to end_us."""
    return [(iv.state, (iv.start_us - T0) / S, None if iv.end_us is None else (iv.end_us - T0) / S, iv.shift)
            for iv in store.intervals(0, end_us, machines=[machine], open_until=end_us)]


def test_counter_running_then_idle_after_the_window_at_the_exact_instant(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    eng.start(T0)
    eng.feed(batch(ids, [("press/fault", T0 + 1 * S, 0, GOOD), ("press/strokes", T0 + 1 * S, 5, GOOD)]))
    assert eng.current()[PRESS] == ("unknown", T0)  # counter seen once: not yet known to advance or stand
    eng.feed(batch(ids, [("press/strokes", T0 + 2 * S, 6, GOOD)]))
    assert eng.current()[PRESS] == ("running", T0 + 2 * S)
    eng.tick(T0 + 31 * S)
    assert eng.current()[PRESS][0] == "running"  # advanced 29 s ago, window 30 s
    eng.tick(T0 + 40 * S)
    assert eng.current()[PRESS] == ("idle", T0 + 32 * S)  # the instant the window ran out, not the tick
    eng.feed(batch(ids, [("press/strokes", T0 + 50 * S, 7, GOOD)]))
    assert timeline(store, PRESS, T0 + 60 * S) == [
        ("unknown", 0, 2, None), ("running", 2, 32, None), ("idle", 32, 50, None), ("running", 50, 60, None)]
    assert [iv.machine for iv in store.open_intervals()] == sorted([PRESS, WELDER, ROBOT])


def test_counter_seen_a_whole_window_without_change_is_idle(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    eng.start(T0)
    eng.feed(batch(ids, [("press/fault", T0, 0, GOOD), ("press/strokes", T0, 5, GOOD)]))
    eng.tick(T0 + 45 * S)
    assert eng.current()[PRESS] == ("idle", T0 + 30 * S)


def test_rule_precedence_and_state_maps(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    eng.start(T0)
    t = T0
    expected = [
        # (rows, press, welder, robot)
        ([("press/fault", 1, GOOD), ("press/strokes", 1, GOOD), ("welder/mode", 10, GOOD),
          ("robot/alarm", 1, GOOD), ("robot/code", 1, GOOD)], "faulted", "running", "faulted"),
        ([("press/strokes", 2, GOOD), ("welder/mode", 20, GOOD), ("robot/alarm", 0, GOOD)],
         "faulted", "changeover", "running"),
        ([("press/fault", 0, GOOD), ("press/strokes", 3, GOOD), ("welder/mode", 30, GOOD), ("robot/code", 2, GOOD)],
         "running", "idle", "starved"),
        ([("welder/mode", 1, GOOD), ("robot/code", 3, GOOD)], "running", "unknown", "blocked"),
        ([("welder/mode", 10.5, GOOD), ("robot/code", 6, GOOD)], "running", "unknown", "changeover"),
        ([("robot/code", 99, GOOD)], "running", "unknown", "unknown"),
        ([("robot/code", 4, GOOD)], "running", "unknown", "faulted"),  # default map: code = index in STATES
    ]
    for rows, press, welder, robot in expected:
        t += S
        eng.feed(batch(ids, [(tag, t, v, q) for tag, v, q in rows]))
        cur = eng.current()
        assert (cur[PRESS][0], cur[WELDER][0], cur[ROBOT][0]) == (press, welder, robot), rows


def test_bad_quality_makes_the_state_unknown_unless_an_earlier_rule_wins(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    eng.start(T0)
    eng.feed(batch(ids, [("robot/alarm", T0 + S, 0, GOOD), ("robot/code", T0 + S, 1, GOOD)]))
    assert eng.current()[ROBOT][0] == "running"
    eng.feed(batch(ids, [("robot/alarm", T0 + 2 * S, 0, BAD)]))
    assert eng.current()[ROBOT] == ("unknown", T0 + 2 * S)
    eng.feed(batch(ids, [("robot/alarm", T0 + 3 * S, 1, GOOD), ("robot/code", T0 + 3 * S, 1, BAD)]))
    assert eng.current()[ROBOT] == ("faulted", T0 + 3 * S)  # a good, true fault input wins over a bad code
    eng.feed(batch(ids, [("robot/alarm", T0 + 4 * S, 0, GOOD)]))
    assert eng.current()[ROBOT] == ("unknown", T0 + 4 * S)  # now the bad code decides
    eng.feed(batch(ids, [("robot/code", T0 + 5 * S, float("nan"), GOOD)]))
    assert eng.current()[ROBOT][0] == "unknown"
    eng.feed(batch(ids, [("robot/code", T0 + 6 * S, 1, 64)]))  # uncertain quality is usable
    assert eng.current()[ROBOT] == ("running", T0 + 6 * S)
    # a counter that goes bad and comes back with the same value has not advanced
    eng.feed(batch(ids, [("press/fault", T0 + S, 0, GOOD), ("press/strokes", T0 + S, 1, GOOD),
                         ("press/strokes", T0 + 2 * S, 2, GOOD), ("press/strokes", T0 + 3 * S, 2, BAD)]))
    assert eng.current()[PRESS] == ("unknown", T0 + 3 * S)
    eng.feed(batch(ids, [("press/strokes", T0 + 20 * S, 2, GOOD)]))
    assert eng.current()[PRESS] == ("running", T0 + 20 * S)  # last change at 2 s, window not over
    eng.tick(T0 + 40 * S)
    assert eng.current()[PRESS] == ("idle", T0 + 32 * S)


def test_late_samples_count_at_the_machine_clock(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    eng.start(T0)
    eng.feed(batch(ids, [("robot/alarm", T0 + 10 * S, 0, GOOD), ("robot/code", T0 + 10 * S, 1, GOOD)]))
    eng.feed(batch(ids, [("robot/code", T0 + 5 * S, 2, GOOD)]))  # older than what the robot has seen
    assert eng.current()[ROBOT] == ("starved", T0 + 10 * S)
    # running lasted no time (opened and closed at 10 s): the store reports no empty interval
    assert timeline(store, ROBOT, T0 + 20 * S) == [("unknown", 0, 10, None), ("starved", 10, 20, None)]


def _strokes(ids: dict[str, int], start_us: int, end_us: int, step_us: int = S, first: int = 0):  # type: ignore[no-untyped-def]
    """One poll per step: the fault input (false) and the stroke counter advancing by one."""
    ts = np.arange(start_us, end_us + 1, step_us, dtype=np.int64)
    tids = np.tile([ids[f"{LINE}/press/fault"], ids[f"{LINE}/press/strokes"]], len(ts))
    values = np.column_stack([np.zeros(len(ts)), np.arange(len(ts)) + first]).ravel()
    return numeric_batch(tids, np.repeat(ts, 2), values, GOOD)


def test_planned_stop_at_break_and_shift_boundaries_from_the_calendar(store: Store) -> None:
    p = plant(SHIFTS)
    ids, eng = tag_ids(p), engine(store, p, calendar=True)
    start = MONDAY + 10 * H - 10 * S  # 09:59:50, shift "early", break 10:00-10:30
    eng.start(start)
    eng.feed(_strokes(ids, start, MONDAY + 10 * H + 31 * 60 * S))
    eng.feed(_strokes(ids, MONDAY + 14 * H - 60 * S, MONDAY + 14 * H + 30 * S, first=10_000))
    eng.feed(_strokes(ids, MONDAY + 22 * H - 60 * S, MONDAY + 22 * H - 10 * S, first=20_000))
    eng.tick(MONDAY + 22 * H + 10 * S)
    eng.tick(MONDAY + 22 * H + 120 * S)
    got = [(iv.state, iv.start_us - MONDAY, iv.shift)
           for iv in store.intervals(0, MONDAY + 23 * H, machines=[PRESS])]
    assert got == [
        ("unknown", 10 * H - 10 * S, "early"),
        ("running", 10 * H - 9 * S, "early"),
        ("planned_stop", 10 * H, "early"),  # the break, at its exact start
        ("running", 10 * H + 30 * 60 * S, "early"),
        ("idle", 10 * H + 31 * 60 * S + 30 * S, "early"),  # last stroke 10:31:00 + 30 s window
        ("running", 14 * H - 60 * S, "early"),  # the counter differs from the last value seen: it advanced
        ("running", 14 * H, "late"),  # same state, new shift: a new interval
        ("idle", 14 * H + 60 * S, "late"),
        ("running", 22 * H - 60 * S, "late"),
        ("planned_stop", 22 * H, None),  # end of the last shift
    ]


def test_feed_picks_relevant_rows_among_many(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    eng.start(T0)
    rng = np.random.default_rng(7)
    n = 20_000
    tids = rng.choice(np.array([ids[f"{LINE}/gauge/size"], 999, 1000], dtype=np.uint32), n)
    relevant = rng.choice(n, 5, replace=False)
    tids[relevant] = ids[f"{LINE}/welder/mode"]
    values = np.full(n, 3.0)
    values[np.sort(relevant)] = [10, 20, 30, 20, 10]
    ts = T0 + np.arange(n, dtype=np.int64) * 1000
    got = eng.feed(numeric_batch(tids, ts, values, GOOD))
    assert got == 5
    states = [iv.state for iv in store.intervals(0, T0 + H, machines=[WELDER])]
    assert states == ["unknown", "running", "changeover", "idle", "changeover", "running"]
    assert eng.feed(numeric_batch([999], [T0], [1.0], GOOD)) == 0


def test_text_state_tag_and_listeners(store: Store) -> None:
    p = plant()
    ids, eng = tag_ids(p), engine(store, p)
    seen: list[StateChange] = []

    def broken(_: StateChange) -> None:
        raise RuntimeError("listener bug")

    eng.add_listener(broken)
    eng.add_listener(seen.append)
    eng.start(T0)
    eng.feed(text_batch([ids[f"{LINE}/welder/mode"]] * 2, [T0 + S, T0 + 2 * S], ["changeover", "lunch"], GOOD))
    welder = [(c.state, c.since_us - T0, c.previous) for c in seen if c.machine == WELDER]
    assert welder == [("unknown", 0, None), ("changeover", S, "unknown"), ("unknown", 2 * S, "changeover")]
    assert eng.errors == len(seen)  # the broken listener failed each time, the other one still heard
    assert {c.line for c in seen} == {LINE} and {c.site for c in seen} == {"s1"}


def test_restart_after_a_crash_closes_at_the_last_known_time(store: Store) -> None:
    p = plant()
    ids = tag_ids(p)
    a = engine(store, p, heartbeat_s=10)
    a.start(T0)
    a.feed(batch(ids, [("press/fault", T0, 0, GOOD), ("press/strokes", T0, 1, GOOD),
                       ("press/strokes", T0 + 2 * S, 2, GOOD)]))
    for k in range(3, 16):
        a.feed(batch(ids, [("press/strokes", T0 + k * S, k, GOOD)]))
        a.tick(T0 + k * S)
    assert store.get_meta(LAST_US_KEY) == T0 + 12 * S  # beats at the change (2 s), then every 10 s
    # crash: `a` is never stopped; a new engine starts 100 s later
    b = engine(store, p)
    closed = b.start(T0 + 100 * S)
    assert len(closed) == 3
    assert timeline(store, PRESS, T0 + 200 * S) == [
        ("unknown", 0, 2, None), ("running", 2, 12, None), ("unknown", 100, 200, None)]
    assert timeline(store, WELDER, T0 + 200 * S) == [("unknown", 0, 12, None), ("unknown", 100, 200, None)]
    b.stop(T0 + 150 * S)
    assert store.open_intervals() == []
    assert timeline(store, PRESS, T0 + 200 * S)[-1] == ("unknown", 100, 150, None)
    c = engine(store, p)
    assert c.start(T0 + 300 * S) == []  # a clean stop leaves nothing to recover


async def test_run_consumes_a_bus_subscription(store: Store) -> None:
    p = plant()
    ids, bus = tag_ids(p), InProcBus()
    eng = StateEngine(p, store, {}, now=lambda: T0 + 10 * S, tag_ids=ids)
    sub = bus.subscribe("states")
    task = asyncio.create_task(eng.run(sub, tick_interval=0.01))
    bus.publish(batch(ids, [("robot/alarm", T0 + S, 0, GOOD), ("robot/code", T0 + S, 2, GOOD)]))
    await asyncio.sleep(0.05)
    assert eng.current()[ROBOT][0] == "starved"
    sub.close()
    await asyncio.wait_for(task, 5)
    assert store.open_intervals() == []  # run() stops cleanly when the subscription closes
