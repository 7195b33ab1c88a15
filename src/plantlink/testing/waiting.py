"""Waiting on conditions (never on fixed sleeps), with bounds generous enough for a loaded machine."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

#: The default bound of a wait, in seconds: long, because CI machines are slow; a passing test never waits it.
#: The environment variable ``PLANTLINK_TEST_TIMEOUT`` sets another.
TIMEOUT = float(os.environ.get("PLANTLINK_TEST_TIMEOUT", "15"))


async def wait_until(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``cond`` every 10 ms until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout:g} s: {what}")
        await asyncio.sleep(0.01)
