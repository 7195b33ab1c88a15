"""Engines are pure: a step (``step``, ``advance``) returns the events computed by hand and touches neither the
store nor the recorder; ``feed``/``tick`` (or the listener) are that step plus the recorder, row for row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from plantlink.engines.alarms.engine import AlarmEngine
from plantlink.engines.downtime import DowntimeEngine
from plantlink.engines.events import (
    AlarmsRecorded,
    DowntimeClosed,
    DowntimeOpened,
    Event,
    IntervalOpened,
    MetaSet,
    Sinks,
)
from plantlink.engines.recorder import Recorder
from plantlink.engines.states import LAST_US_KEY, StateChange, StateEngine
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore, JournalEntry, SavedState
from tests.alarms import plants as ap
from tests.store.plants import GOOD, LINE, S, batch, plant, tag_ids

T0 = 1_767_600_000 * S
ROBOT, PRESS = f"{LINE}/robot", f"{LINE}/press"
TEMP = f"{ap.M}/temp"


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every SQL statement run on ``engine`` inside the block."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as c:
        return {name: sorted(map(tuple, c.execute(t.select())), key=repr) for name, t in meta.tables.items()}


def store_at(path: Path) -> Store:
    path.mkdir()
    return Store.open(default_url(path))


# -- machine states -------------------------------------------------------------------------------------------
def test_a_state_step_returns_its_events_and_touches_no_store_or_recorder(tmp_path: Path) -> None:
    p, store = plant(), store_at(tmp_path / "s")
    ids = tag_ids(p)
    eng = StateEngine(p, store, {}, tag_ids=ids)
    eng.start(T0)  # recovery reads and writes the store, once
    queued = eng.recorder.queued
    with statements(store.engine) as sql:
        # the robot: fault input off, state code 1 = running (the index in STATES); the press's counter is
        # seen once (its state stays unknown until it advances or stands a whole window)
        got = eng.step(batch(ids, [("robot/alarm", T0 + S, 0, GOOD), ("robot/code", T0 + S, 1, GOOD),
                                   ("press/fault", T0 + 2 * S, 0, GOOD), ("press/strokes", T0 + 2 * S, 5, GOOD)]))
        assert got == [IntervalOpened(ROBOT, LINE, "running", T0 + S, None, {LAST_US_KEY: T0 + S})]
        # at 40 s the press's counter has stood its 30 s window: idle from 32 s (the heartbeat rides along)
        assert eng.advance(T0 + 40 * S) == [IntervalOpened(PRESS, LINE, "idle", T0 + 32 * S, None,
                                                           {LAST_US_KEY: T0 + 32 * S})]
        assert eng.advance(T0 + 45 * S) == [MetaSet(LAST_US_KEY, T0 + 45 * S)]  # 10 s after the last beat
        assert eng.advance(T0 + 50 * S) == []  # nothing changed, the heartbeat is not due
    assert sql == [] and eng.recorder.queued == queued


def drive_states(eng: StateEngine, ids: dict[str, int], hand: Callable[[list[Event]], None] | None) -> None:
    """The same inputs, by ``feed``/``tick`` (hand None) or by ``step``/``advance`` handed to ``hand``."""
    inputs = [[("robot/alarm", T0 + S, 0, GOOD), ("robot/code", T0 + S, 1, GOOD), ("press/strokes", T0 + S, 1, GOOD),
               ("press/fault", T0 + S, 0, GOOD), ("welder/mode", T0 + S, 10, GOOD)],
              [("robot/code", T0 + 5 * S, 4, GOOD), ("press/strokes", T0 + 6 * S, 2, GOOD)],
              [("robot/alarm", T0 + 50 * S, 1, GOOD), ("welder/mode", T0 + 55 * S, 20, GOOD)],
              [("robot/alarm", T0 + 70 * S, 0, GOOD), ("robot/code", T0 + 70 * S, 1, GOOD)]]
    eng.start(T0)
    for k, rows_ in enumerate(inputs):
        b, t = batch(ids, rows_), T0 + (k + 1) * 30 * S
        if hand is None:
            eng.feed(b)
            eng.tick(t)
        else:
            hand(eng.step(b))
            hand(eng.advance(t))
    eng.stop(T0 + 200 * S)


def test_the_state_engine_fed_or_stepped_writes_the_same_rows(tmp_path: Path) -> None:
    p = plant()
    ids = tag_ids(p)
    fed, stepped = store_at(tmp_path / "fed"), store_at(tmp_path / "stepped")
    drive_states(StateEngine(p, fed, {}, tag_ids=ids), ids, None)
    eng = StateEngine(p, stepped, {}, tag_ids=ids)
    recorder = Recorder(Sinks.of(stepped))
    drive_states(eng, ids, recorder.submit)
    assert recorder.flush(5.0)
    assert len(fed.intervals(0, T0 + 300 * S)) > 6
    assert rows(fed.engine) == rows(stepped.engine)


# -- downtime -------------------------------------------------------------------------------------------------
def change(state: str, at_s: int, previous: str | None, since_s: int | None) -> StateChange:
    return StateChange(ROBOT, LINE, "s1", state, T0 + at_s * S, None, previous,
                       None if since_s is None else T0 + since_s * S)


CHANGES = [change("running", 0, None, None), change("faulted", 10, "running", 0), change("idle", 40, "faulted", 10),
           change("running", 100, "idle", 40), change("unknown", 300, "running", 100),
           change("running", 320, "unknown", 300), change("starved", 400, "running", 320),
           change("running", 700, "starved", 400)]


def test_a_downtime_step_returns_its_events_and_touches_no_store(tmp_path: Path) -> None:
    p, store = plant(), store_at(tmp_path / "s")
    eng = DowntimeEngine(p, store)
    eng.start()
    queued = eng.recorder.queued
    with statements(store.engine) as sql:
        assert eng.step(CHANGES[0]) == []  # running: no stop
        (opened,) = eng.step(CHANGES[1])
        assert isinstance(opened, DowntimeOpened)
        assert (opened.machine, opened.line, opened.site, opened.start_us, opened.state, opened.shift) == (
            ROBOT, LINE, "s1", T0 + 10 * S, "faulted", None)
        assert eng.step(CHANGES[2]) == []  # faulted -> idle: the same stop goes on
        # faulted 30 s, idle 60 s: idle dominates; 90 s < the line's 2 min: a micro-stop
        assert eng.step(CHANGES[3]) == [DowntimeClosed(opened.ref, T0 + 100 * S, "idle", True, "change")]
    assert sql == [] and eng.recorder.queued == queued
    assert opened.ref.id is None  # never written: the step handed nothing to anyone


def test_the_downtime_engine_listening_or_stepped_writes_the_same_rows(tmp_path: Path) -> None:
    p = plant()
    heard, stepped = store_at(tmp_path / "heard"), store_at(tmp_path / "stepped")
    listener = DowntimeEngine(p, heard)
    eng = DowntimeEngine(p, stepped)
    recorder = Recorder(Sinks.of(stepped))
    for ch in CHANGES:
        listener.on_change(ch)
        recorder.submit(eng.step(ch))
    listener.stop(T0 + 800 * S)
    recorder.submit(eng.step(change("running", 800, "running", 700)))  # nothing: keeps the two in step
    eng.stop(T0 + 800 * S)  # its stop goes to its own recorder, on the same store
    assert recorder.flush(5.0) and eng.recorder.flush(5.0)
    assert [(e.state, e.duration_s, e.micro) for e in heard.downtime(limit=10).items] == [
        ("starved", 300.0, False), ("unknown", 20.0, False), ("idle", 90.0, True)]
    assert rows(heard.engine) == rows(stepped.engine)


# -- alarms ---------------------------------------------------------------------------------------------------
def test_an_alarm_step_returns_its_events_and_touches_no_store_or_recorder(tmp_path: Path) -> None:
    p = ap.plant()
    astore = AlarmStore(store_at(tmp_path / "s").engine)
    eng = AlarmEngine(p, astore, tag_ids=ap.tag_ids(p))
    eng.start(T0)
    assert eng.recorder is not None
    queued = eng.recorder.queued
    with statements(astore.engine) as sql:
        # 300: above hihi (250, no delay): active at once; above hi (200) too, but hi waits its 2 s on-delay
        got = eng.step(ap.batch(ap.tag_ids(p), [(TEMP, T0, 300.0, GOOD)]))
        assert got == [AlarmsRecorded(
            (JournalEntry(f"{TEMP}:hihi", "s1", T0, "activate", "normal", "unack_active", "critical", "system",
                          None, 300.0),),
            (SavedState(f"{TEMP}:hihi", "unack_active", True, T0, T0),))]
        assert eng.advance(T0 + S) == []  # hi's delay has not run out
        assert eng.advance(T0 + 3 * S) == [AlarmsRecorded(
            (JournalEntry(f"{TEMP}:hi", "s1", T0 + 2 * S, "activate", "normal", "unack_active", "high", "system",
                          None, 300.0),),
            (SavedState(f"{TEMP}:hi", "unack_active", True, T0 + 2 * S, T0 + 2 * S),))]
    assert sql == [] and eng.recorder.queued == queued


def drive_alarms(eng: AlarmEngine, b: Callable[[list[tuple[str, int, float, int]]], pa.RecordBatch],
                 hand: Callable[[list[Event]], None] | None) -> None:
    inputs = [[(TEMP, T0, 300.0, GOOD), (f"{ap.M}/door", T0, 1.0, GOOD)], [(TEMP, T0 + 4 * S, 100.0, GOOD)],
              [(f"{ap.M}/door", T0 + 6 * S, 0.0, GOOD), (f"{ap.M2}/force", T0 + 7 * S, 150.0, GOOD)],
              [(TEMP, T0 + 9 * S, 0.0, 0)]]
    eng.start(T0)
    for k, rows_ in enumerate(inputs):
        t = T0 + (k + 1) * 3 * S
        if hand is None:
            eng.feed(b(rows_))
            eng.tick(t)
        else:
            hand(eng.step(b(rows_)))
            hand(eng.advance(t))
    eng.tick(T0 + 30 * S) if hand is None else hand(eng.advance(T0 + 30 * S))


def test_the_alarm_engine_fed_or_stepped_writes_the_same_rows(tmp_path: Path) -> None:
    p = ap.plant()
    ids = ap.tag_ids(p)
    fed, stepped = store_at(tmp_path / "fed"), store_at(tmp_path / "stepped")
    a = AlarmEngine(p, AlarmStore(fed.engine), tag_ids=ids)
    drive_alarms(a, lambda r: ap.batch(ids, r), None)
    b = AlarmEngine(p, None, tag_ids=ids)
    recorder = Recorder(Sinks.of(stepped))
    drive_alarms(b, lambda r: ap.batch(ids, r), recorder.submit)
    assert a.recorder is not None and a.recorder.flush(5.0) and recorder.flush(5.0)
    journal, total = AlarmStore(fed.engine).journal(limit=100)
    assert total > 5 and {e.event for e in journal} >= {"activate", "clear"}
    assert rows(fed.engine) == rows(stepped.engine)


def test_an_engine_is_bound_once_and_says_so_when_it_is_not(tmp_path: Path) -> None:
    p, store = plant(), store_at(tmp_path / "s")
    ids = tag_ids(p)
    states = StateEngine(p, store, {})
    states.start(T0)
    rows_ = [("robot/alarm", T0 + S, 0, GOOD), ("robot/code", T0 + S, 1, GOOD)]
    with pytest.raises(LookupError, match="not bound to tag ids"):
        states.step(batch(ids, rows_))
    states.bind(ids)
    assert [e.state for e in states.step(batch(ids, rows_)) if isinstance(e, IntervalOpened)] == ["running"]
    alarms = AlarmEngine(ap.plant(), None)
    with pytest.raises(LookupError, match="not bound to tag ids"):
        alarms.step(ap.batch(ap.tag_ids(ap.plant()), [(TEMP, T0, 300.0, GOOD)]))
