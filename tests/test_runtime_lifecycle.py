"""One start/stop protocol (``plantlink.lifecycle``): parts start in order and stop in reverse; a start that
fails halfway stops what had started and leaves nothing running; a stop that fails does not keep the other
parts from stopping."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from plantlink.errors import HistorianError
from plantlink.lifecycle import Component, Lifecycle, Part
from plantlink.maintenance import MaintenanceSettings
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.wal import WalSettings
from tests.test_runtime_maintenance import PLANT


class Recorded:
    """A component that writes what happens to it into a shared list."""

    def __init__(self, name: str, log: list[str], fail_start: bool = False, fail_stop: bool = False):
        self.name, self.log, self.fail_start, self.fail_stop = name, log, fail_start, fail_stop

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")


async def test_parts_stop_in_the_reverse_order_of_their_start() -> None:
    log: list[str] = []
    life = Lifecycle()
    await life.start(Recorded("a", log), Recorded("b", log))
    await life.start(Recorded("c", log))
    assert life.running == ["a", "b", "c"]
    assert await life.stop() == []
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert life.running == []


async def test_a_failed_start_stops_what_started_and_raises() -> None:
    log: list[str] = []
    life = Lifecycle()
    await life.start(Recorded("a", log))
    with pytest.raises(RuntimeError, match="b cannot start"):
        await life.start(Recorded("b", log, fail_start=True), Recorded("c", log))
    assert log == ["start a", "stop b", "stop a"]  # b, started halfway, and a were stopped; c never started
    assert life.running == []


async def test_a_failed_stop_is_reported_and_the_others_still_stop() -> None:
    log: list[str] = []
    life = Lifecycle()
    await life.start(Recorded("a", log), Recorded("b", log, fail_stop=True), Recorded("c", log))
    assert await life.stop() == ["b"]
    assert log[-3:] == ["stop c", "stop b", "stop a"]
    assert life.stop_errors == 1


async def test_part_adapts_sync_blocking_and_async_callables() -> None:
    seen: list[str] = []
    main = threading.get_ident()

    def blocking() -> None:
        seen.append("thread" if threading.get_ident() != main else "loop")

    async def later() -> None:
        seen.append("awaited")

    part = Part("p", blocking, later, blocking=True)
    assert isinstance(part, Component)
    await part.start()
    await part.stop()
    assert seen == ["thread", "awaited"]


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


async def test_a_runtime_that_fails_halfway_leaves_nothing_running(tmp_path: Path) -> None:
    """The relational store cannot be opened (its directory is a file): the historian, its writer,
    maintenance and the write-ahead log had started; all are stopped again and the error is raised."""
    before = _threads()
    (tmp_path / "blocker").write_text("a file where the store's directory should be")
    rt = Runtime(parse_plant(PLANT, "plant.yaml"), tmp_path, wal=WalSettings(enabled=True),
                 store_url=f"sqlite:///{tmp_path / 'blocker' / 'store.db'}",
                 maintenance=MaintenanceSettings(retention_interval_s=3600, rollup_interval_s=3600))
    with pytest.raises(Exception, match=r"unable to open database file|Not a directory|File exists|blocker"):
        await rt.start()
    assert rt.running == []
    assert not {"plantlink-maintenance", "plantlink-recorder", "wal-committer"} & (_threads() - before)
    assert rt.historian is not None
    with pytest.raises(HistorianError):
        rt.historian.flush()  # closed: the DuckDB file is free for the next start
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert pending == []


async def test_a_runtime_runs_every_part_and_stops_them_all(tmp_path: Path) -> None:
    rt = Runtime(parse_plant(PLANT, "plant.yaml"), tmp_path, wal=WalSettings(enabled=True),
                 maintenance=MaintenanceSettings(retention_interval_s=3600, rollup_interval_s=3600))
    await rt.start()
    try:
        names = rt.running
        assert names[0] == "historian" and names[-1] == "write-ahead log"  # the one device is disabled
        for part in ("historian writer", "maintenance", "store", "recorder", "alarms", "state engine",
                     "engine tasks", "latest values"):
            assert part in names
        assert names.index("store") < names.index("recorder") < names.index("engine tasks")
    finally:
        await rt.stop()
    assert rt.running == []
    assert not {"plantlink-maintenance", "plantlink-recorder", "wal-committer"} & _threads()


async def test_a_cancelled_start_waits_for_its_thread_then_stops_that_part_too() -> None:
    """A signal while a part starts in a thread (the historian opening, say): the thread's work is finished
    first, then that part and those before it stop, the cancellation goes on; and a part whose start fails
    halfway (a connector with tasks already running) is stopped too."""
    import time

    log: list[str] = []
    entered = threading.Event()

    def slow_open() -> None:
        entered.set()
        time.sleep(0.3)
        log.append("opened")

    life = Lifecycle()
    await life.start(Recorded("a", log))
    task = asyncio.create_task(life.start(Part("slow", slow_open, lambda: log.append("closed"), blocking=True)))
    await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["start a", "opened", "closed", "stop a"]
    assert life.running == []

    log.clear()
    with pytest.raises(RuntimeError):
        await life.start(Recorded("half", log, fail_start=True))
    assert log == ["stop half"]
