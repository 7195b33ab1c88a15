"""The poll loop the polling connectors share: one cycle every ``period`` seconds on a fixed grid.

A cycle that overruns skips the ticks it missed (it never bursts to catch up); the loop ends when ``lost`` is
set (the connection went away, or the connector stops) or when a cycle raises ConnectionLost, which sets it
with the reason. Any other exception of a cycle is logged and put in the device's health; the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable

from plantlink.connectors.base import ConnectionLost, DeviceHealth


class Lost:
    """The lost-connection signal of one connection: an event and its first reason."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


async def poll_on_grid(period: float, lost: Lost, cycle: Callable[[], Awaitable[None]], health: DeviceHealth,
                       log: logging.Logger) -> None:
    loop = asyncio.get_running_loop()
    t0, k = loop.time(), 0
    while not lost.is_set():
        try:
            await cycle()
        except ConnectionLost as exc:
            lost.set(str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a decoding bug must not kill the loop
            log.exception("%s %s: poll cycle failed", health.protocol, health.device)
            health.set_state(health.state, f"poll cycle failed: {exc!r}")
        k += 1
        now = loop.time()
        if t0 + k * period < now:  # overran: skip the missed ticks, stay on the grid
            k = math.ceil((now - t0) / period)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.event.wait(), t0 + k * period - now)
