"""Waiting on conditions in tests: one place, generous bounds, never timing luck.

A test waits for what it needs (a value stored, a page updated, a socket closed) by polling a condition. The
bound it gives is what a quiet machine needs with room to spare; :func:`patience` stretches it on a loaded
machine (load average per core above 1) and by ``PLANTLINK_TEST_PATIENCE`` (a factor, default 1), so a busy
CI box slows a test down instead of failing it. A bound is only ever reached by a test that fails anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Callable
from typing import Any


def patience(seconds: float) -> float:
    """``seconds`` stretched by the machine's load per core (when above 1) and ``PLANTLINK_TEST_PATIENCE``."""
    factor = float(os.environ.get("PLANTLINK_TEST_PATIENCE", "1") or 1)
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        load = 1.0
    return seconds * max(1.0, factor) * max(1.0, load)


async def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
                   step: float = 0.02) -> Any:
    """Poll ``cond`` (a function, possibly returning an awaitable) until it returns something true; return it.

    Raise AssertionError naming ``what`` when it is still false after ``patience(timeout)`` seconds."""
    bound = patience(timeout)
    deadline = time.monotonic() + bound
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {bound:.1f} s")
        await asyncio.sleep(step)


def wait_until(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
               step: float = 0.05) -> Any:
    """The same as :func:`wait_for` for code outside an event loop (browser tests, threads)."""
    bound = patience(timeout)
    deadline = time.monotonic() + bound
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {bound:.1f} s")
        time.sleep(step)
