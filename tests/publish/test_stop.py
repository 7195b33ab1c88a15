"""A publisher stops within bounds even when its broker stops answering (frozen with SIGSTOP: the kernel still
accepts connections, nothing is answered), and ``plantlink.tasks.cancel_and_wait`` cancels again a task that
swallowed a cancellation (what a client does when it turns the ``CancelledError`` into its own error on the way
out, or Python 3.11's ``asyncio.wait_for`` when the inner future completes as the cancellation arrives)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from plantlink.bus.inproc import InProcBus
from plantlink.model.publish import PublishSettings
from plantlink.publish.uns import UnsPublisher, targets_of
from plantlink.tasks import cancel_and_wait
from tests.connectors.mosquitto import mosquitto
from tests.waiting import wait_for


async def test_a_publisher_stops_while_its_broker_is_frozen(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker:
        settings = PublishSettings.model_validate({"mqtt": f"mqtt://127.0.0.1:{broker.port}",
                                                   "reconnect_min": "100ms"})
        targets = targets_of(settings, "Acme", [(1, "windsor/press/l1/p1/temp", "C", "float")])
        pub = UnsPublisher(settings, targets, InProcBus())
        await pub.start()
        await wait_for(lambda: pub.connected, 30, "the publisher connected")
        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.wait_for(pub.stop(), 60)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert not pub.connected and pub._tasks == []


async def test_cancel_and_wait_cancels_again_a_task_that_swallowed_the_first() -> None:
    cancels = 0

    async def stubborn() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 1:
                    continue  # swallowed, as a client turning it into its own error would
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task, None], "stubborn", every=0.05)
    assert task.cancelled() and cancels == 2


async def test_cancel_and_wait_gives_up_after_its_limit(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf(), name="deaf")
    await asyncio.sleep(0)
    assert not await cancel_and_wait([task], "deaf part", limit=0.2, every=0.05)
    assert "deaf part: 1 task(s) did not stop" in caplog.text and "deaf" in caplog.text
    release.set()
    await task
