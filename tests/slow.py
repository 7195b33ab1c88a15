"""Slow writes for tests: ``Slow`` wraps a real store or audit log and makes the named methods take ``SLOW_S``
longer (a disk that stalls); ``lag_during`` measures how late the event loop was meanwhile."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
SLOW_S = 2.0
#: the loop may be late by this much at worst (a loaded machine, a full collection late in a long run: 0.54 and
#: 0.65 s were seen), half of one slow write: a write on the loop would stall it for all of SLOW_S
MAX_LAG_S = 1.0


class Slow:
    """The real object, each call of ``slow`` taking ``SLOW_S`` longer (a disk that stalls)."""

    def __init__(self, real: Any, *slow: str):
        self._real, self._slow = real, set(slow)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._real, name)
        if name not in self._slow:
            return found

        def slowly(*args: Any, **kw: Any) -> Any:
            time.sleep(SLOW_S)
            self.calls.append(name)
            return found(*args, **kw)

        return slowly


async def lag_during(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result and how late the event loop was at worst meanwhile, garbage collections apart: late in
    a long run a full collection of the suite's heap can stop every thread for a second (seen once in CI, on a
    route that writes nothing on the loop). A collection's time is taken off the round it fell in, so a write on
    the loop (``SLOW_S``) still shows whole."""
    worst, done, collecting, started = 0.0, False, 0.0, 0.0

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        nonlocal collecting, started
        if phase == "start":
            started = time.perf_counter()
        else:
            collecting += time.perf_counter() - started

    async def probe() -> None:
        nonlocal worst, collecting
        while not done:
            t, collecting = time.perf_counter(), 0.0
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - t - 0.01 - collecting)

    gc.callbacks.append(on_gc)
    task = asyncio.create_task(probe())
    await asyncio.sleep(0.02)  # the probe is watching before the work starts
    try:
        result = await work
    finally:
        done = True
        await task  # its last round measures the end of the work too
        gc.callbacks.remove(on_gc)
    return result, worst
