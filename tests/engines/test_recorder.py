"""The recorder: engine events written off the event loop with one failure policy, against a real SQLite store
made to fail (its table renamed away by another connection) or made slow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from plantlink.bus import InProcBus
from plantlink.engines.events import DowntimeClosed, IntervalOpened, Ref, Sinks
from plantlink.engines.recorder import Recorder, RecorderPolicy
from plantlink.engines.states import StateEngine
from plantlink.store import Store, default_url
from tests.store.plants import GOOD, LINE, S, batch, plant, tag_ids

FAST = RecorderPolicy(base_backoff_s=0.01, max_backoff_s=0.1, max_attempts=10_000)
T0 = 1_767_600_000 * S
ROBOT = f"{LINE}/robot"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(default_url(tmp_path))


def break_table(store: Store, broken: bool) -> None:
    """Make every interval write fail (or work again) from another connection: the table goes away."""
    a, b = ("state_intervals", "state_intervals_away") if broken else ("state_intervals_away", "state_intervals")
    with sa.create_engine(store.engine.url).begin() as c:
        c.exec_driver_sql(f"ALTER TABLE {a} RENAME TO {b}")


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def opened(n: int) -> list[IntervalOpened]:
    return [IntervalOpened(f"{LINE}/m{k}", LINE, "running", T0 + k * S, None) for k in range(n)]


def test_a_failing_store_is_retried_with_backoff_and_nothing_is_lost(store: Store) -> None:
    rec = Recorder(Sinks.of(store), FAST)
    rec.start()
    try:
        break_table(store, True)
        rec.submit(opened(5))
        wait_for(lambda: rec.retries >= 3)
        assert rec.written == 0 and rec.status()["waiting"] == 5 and "state_intervals" in str(rec.last_error)
        break_table(store, False)
        assert rec.flush(20)
    finally:
        rec.close()
    assert sorted(iv.machine for iv in store.open_intervals()) == [f"{LINE}/m{k}" for k in range(5)]
    st = rec.status()
    assert (st["written"], st["failed"], st["waiting"], st["queued"]) == (5, 0, 0, 5) and st["retries"] >= 3


def test_backoff_doubles_up_to_its_cap() -> None:
    p = RecorderPolicy(base_backoff_s=0.05, max_backoff_s=1.0)
    assert [p.backoff(a) for a in (1, 2, 3, 5, 6, 30)] == [0.05, 0.1, 0.2, 0.8, 1.0, 1.0]


def test_events_that_exhaust_their_attempts_are_kept_in_the_dead_letters_and_counted(store: Store,
                                                                                      tmp_path: Path) -> None:
    dead = tmp_path / "recorder-failed.jsonl"
    rec = Recorder(Sinks.of(store), RecorderPolicy(base_backoff_s=0.001, max_backoff_s=0.01, max_attempts=3),
                   dead_letter=dead)
    rec.start()
    break_table(store, True)
    try:
        rec.submit(opened(2))
        wait_for(lambda: rec.failed == 2)
    finally:
        break_table(store, False)
        rec.close()
    rows = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [(r["kind"], r["attempts"], r["event"]["machine"]) for r in rows] == [
        ("interval.open", 3, f"{LINE}/m0"), ("interval.open", 3, f"{LINE}/m1")]
    assert rec.status()["healthy"] is False and rec.written == 0


def test_one_poisoned_event_in_a_transaction_is_found_and_set_aside_the_others_are_written(
        store: Store, tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    rec = Recorder(Sinks.of(store), RecorderPolicy(base_backoff_s=0.001, max_backoff_s=0.01, max_attempts=3),
                   dead_letter=dead)
    events = opened(4)
    poisoned = DowntimeClosed(Ref(), T0, "idle", False, "change")  # closes an event that was never opened
    rec.submit([*events[:2], poisoned, *events[2:]])  # inline: the transaction of five fails at once
    assert rec.flush(10)
    assert len(store.open_intervals()) == 4 and rec.written == 4 and rec.failed == 1
    assert json.loads(dead.read_text())["kind"] == "downtime.close"


def test_close_writes_everything_queued_before_it_returns(store: Store) -> None:
    rec = Recorder(Sinks.of(store), FAST)
    rec.start()
    rec.submit(opened(200))
    assert rec.close()
    assert len(store.open_intervals()) == 200 and rec.status()["waiting"] == 0


def test_inline_a_failed_event_waits_and_is_written_by_the_next_submit(store: Store) -> None:
    rec = Recorder(Sinks.of(store), RecorderPolicy(base_backoff_s=0.0, max_attempts=100))
    break_table(store, True)
    rec.submit(opened(1))
    assert rec.written == 0 and rec.status()["waiting"] == 1
    break_table(store, False)
    rec.submit(opened(2)[1:])
    assert rec.written == 2 and len(store.open_intervals()) == 2


def slow_store(path: Path) -> Store:
    """A real store whose interval inserts take 200 ms each (a loaded database server, a slow disk)."""
    store = Store.open(default_url(path))

    def slow(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO state_intervals"):
            time.sleep(0.2)

    sa.event.listen(store.engine, "before_cursor_execute", slow)
    return store


async def loop_lag_while_states_change(store: Store, recorder: Recorder | None) -> float:
    """Feed 10 state changes over ~1 s through ``StateEngine.run``; the event loop's worst lag (ms)."""
    p = plant()
    ids, bus = tag_ids(p), InProcBus()
    clock = [T0]
    eng = StateEngine(p, store, {}, now=lambda: clock[0], recorder=recorder, tag_ids=ids)
    eng.start(T0)
    sub = bus.subscribe("states")
    task = asyncio.create_task(eng.run(sub, tick_interval=0.05))
    lags: list[float] = []

    async def probe() -> None:
        while True:
            s = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - s - 0.01) * 1000)

    prober = asyncio.create_task(probe())
    for k in range(10):
        code = 1 + k % 2  # robot: running <-> starved, one change per batch
        bus.publish(batch(ids, [("robot/alarm", T0 + (k + 1) * S, 0, GOOD), ("robot/code", T0 + (k + 1) * S,
                                                                                code, GOOD)]))
        await asyncio.sleep(0.1)
    prober.cancel()
    clock[0] = T0 + 100 * S  # the clean stop comes after the samples
    sub.close()
    await asyncio.wait_for(task, 30)
    return float(np.max(lags))


async def test_a_slow_store_does_not_block_the_event_loop(tmp_path: Path) -> None:
    slow = slow_store(tmp_path)
    rec = Recorder(Sinks.of(slow), FAST)
    rec.start()
    lag = await loop_lag_while_states_change(slow, rec)
    assert await asyncio.to_thread(rec.close)
    assert lag < 150, f"the event loop stalled {lag:.0f} ms"  # each write takes 200 ms, in the worker
    states = [iv.state for iv in slow.intervals(0, T0 + 200 * S, machines=[ROBOT])]
    assert states[-10:] == ["running", "starved"] * 5 and rec.written == rec.queued and slow.open_intervals() == []
    # the same engine writing in the loop's thread (what it did before the recorder) stalls it: the probe works
    inline_lag = await loop_lag_while_states_change(slow_store(tmp_path / "b"), None)
    assert inline_lag >= 180
