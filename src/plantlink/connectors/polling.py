"""What the polling connectors (Modbus, S7, Logix) share: a supervisor that connects, polls each group on its
grid until the connection is lost, and reconnects with a doubling back-off; the device's state from its
answers (connected once it answered a request, not when TCP accepted; down after ``DOWN_AFTER`` failures in
a row); one BAD batch for every point when it goes away, not one per attempt.

A subclass sets ``protocol`` and ``logger``, keeps its settings in ``device`` (``timeout``, ``reconnect_min``,
``reconnect_max``) and its poll groups in ``pollers`` (each with ``period`` and ``bad_batches(ts)``), and
implements ``_connect`` (None when connected, else why not), ``_close`` and ``_cycle_of`` (one poll of a group).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel

from plantlink.connectors.base import BatchSink, ConnectionLost, Connector, DeviceState, Point
from plantlink.connectors.loop import Lost, poll_on_grid
from plantlink.samples import now_us

__all__ = ["DOWN_AFTER", "PollingConnector"]

#: Connection attempts failed in a row before a device reads "down" rather than "reconnecting".
DOWN_AFTER = 3
#: Tags' problems listed in a device's health (the rest counted).
MAX_ISSUES = 20


class PollingConnector(Connector):
    logger: logging.Logger = logging.getLogger("plantlink.connectors")
    device: Any
    pollers: Sequence[Any]

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        super().__init__(device_id, config, points, sink)
        self._task: asyncio.Task[None] | None = None
        self._lost = Lost()
        self._bad_sent = False
        self._failures = 0
        self._delay = 0.0
        self._probed: list[str] | None = None  # what ``probe`` collects while it runs

    # -- what a protocol implements ------------------------------------------------------------------
    async def _connect(self) -> str | None:
        """Open a connection (set ``self._lost`` to a fresh ``Lost`` first); None when connected, else why not."""
        raise NotImplementedError

    async def _close(self) -> None:
        """Close the connection, if any (never raises)."""
        raise NotImplementedError

    def _cycle_of(self, poller: Any, lost: Lost) -> Callable[[], Awaitable[None]]:
        """One poll of ``poller`` on the open connection (``_answered`` when the device answered)."""
        raise NotImplementedError

    def _problems(self, errors: Sequence[str]) -> None:
        """After a cycle: the tags' new problems (refused by the device, a type that does not match), each naming
        its tag, are logged (once, until they go away) and kept by ``probe``; the health's ``issues`` are every
        tag's current problem (reasons of the health report while the device is connected: a person sees each
        refused tag, and it goes when the tag answers again)."""
        for msg in errors:
            self.logger.warning("%s %s: %s", self.protocol, self.device_id, msg)
            self.health.set_state(self.health.state, msg)
            if self._probed is not None:
                self._probed.append(msg)
        current = [m for p in self.pollers for m in getattr(p, "failing", {}).values()]
        more = len(current) - MAX_ISSUES
        self.health.issues = current[:MAX_ISSUES] + ([f"and {more} more tag problem(s)"] if more > 0 else [])

    async def probe(self) -> list[str]:
        """Connect, read every tag once, close (``plantlink doctor``): the tags' problems, each naming its tag
        (empty: every tag answered as configured). Raises ``ConnectionLost`` when the device cannot be reached or
        goes away meanwhile. Nothing is written; the batches read go to the sink as when running."""
        self._probed = []
        try:
            why = await self._connect()
            if why is not None:
                raise ConnectionLost(why)
            lost = self._lost
            for p in self.pollers:
                await asyncio.wait_for(self._cycle_of(p, lost)(), 2 * self.device.timeout + 1)
                if lost.is_set():
                    raise ConnectionLost(lost.reason)
            return list(self._probed)
        finally:
            self._probed = None
            await self._close()

    # -- the lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name=f"{self.protocol} {self.device_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._lost.set("stopped")  # poll loops end at their next check even if a cancellation gets lost
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait({task}, timeout=2 * self.device.timeout + 1)
        await self._close()
        self.health.set_state(DeviceState.STOPPED)

    async def _supervise(self) -> None:
        self._delay, self._failures = self.device.reconnect_min, 0
        while True:
            try:
                why = await self._connect()
                reason = await self._serve() if why is None else why
                await self._close()
                self._failures += 1
                self._went_down(reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the supervisor die
                self.logger.exception("%s %s: unexpected error", self.protocol, self.device_id)
                await self._close()
                self._failures += 1
                self._went_down(f"internal error: {exc!r}")
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, self.device.reconnect_max)

    def _answered(self) -> None:
        """The device answered a request: it is connected (a TCP accept alone does not prove that)."""
        if self.health.state != DeviceState.CONNECTED:
            self.health.set_state(DeviceState.CONNECTED)
            self._bad_sent = False
            self._delay, self._failures = self.device.reconnect_min, 0

    async def _serve(self) -> str:
        """Poll until the connection is lost; returns why."""
        if not self.pollers:
            self._answered()
        lost = self._lost
        tasks = [asyncio.create_task(poll_on_grid(p.period, lost, self._cycle_of(p, lost), self.health,
                                                  self.logger)) for p in self.pollers]
        try:
            await lost.event.wait()
        finally:
            lost.set("connection lost")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return lost.reason

    def _went_down(self, reason: str) -> None:
        state = DeviceState.DOWN if self._failures >= DOWN_AFTER else DeviceState.RECONNECTING
        self.health.set_state(state, reason)
        self.health.issues = []  # the device's state says it all until it answers again
        if not self._bad_sent:
            self._bad_sent = True
            ts = now_us()
            for p in self.pollers:
                for batch in p.bad_batches(ts):
                    self.emit(batch)
