"""One start/stop protocol for the parts of a running plantlink.

Every part the runtime runs (the historian, the write-ahead log, the historian writer, maintenance, the
relational store, the recorder, the engines, the notifier, the latest-value cache, the connectors) is a
``Component``: a ``name`` and ``async start()`` / ``async stop()``. Parts whose own methods differ (sync,
blocking, taking arguments) are adapted with ``Part``. A ``Lifecycle`` starts components in order and stops
the started ones in reverse order:

* a start that fails stops what had started (in reverse), then raises: a runtime that fails halfway leaves
  no thread, task or open file behind;
* a stop that fails is logged and counted, and the other parts still stop (a stuck connector must not keep
  the historian from flushing).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

log = logging.getLogger("plantlink.lifecycle")


@runtime_checkable
class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Part:
    """A part whose start and stop are plain callables (sync or async; ``blocking`` ones run in a thread, off
    the event loop). Either may be None (nothing to do)."""

    name: str
    on_start: Callable[[], object] | None = None
    on_stop: Callable[[], object] | None = None
    blocking: bool = False

    async def start(self) -> None:
        await _call(self.on_start, self.blocking)

    async def stop(self) -> None:
        await _call(self.on_stop, self.blocking)


async def _call(fn: Callable[[], object] | None, blocking: bool) -> None:
    if fn is None:
        return
    result = await asyncio.to_thread(fn) if blocking else fn()
    if inspect.isawaitable(result):
        await result


class Lifecycle:
    """Starts components in order; stops the started ones in reverse order."""

    def __init__(self) -> None:
        self._started: list[Component] = []
        self.stop_errors = 0

    @property
    def running(self) -> list[str]:
        """The names of the started components, in start order."""
        return [c.name for c in self._started]

    async def start(self, *components: Component) -> None:
        """Start each of ``components`` in order; when one fails, stop every started one and raise."""
        for c in components:
            try:
                await c.start()
            except BaseException as exc:
                log.error("%s did not start (%s); stopping the %d parts that did", c.name,
                          exc.__class__.__name__, len(self._started))
                await self.stop()
                raise
            self._started.append(c)

    async def stop(self) -> list[str]:
        """Stop every started component, the last started first; returns the names of those whose stop
        failed (each logged with its error)."""
        failed: list[str] = []
        while self._started:
            c = self._started.pop()
            try:
                await c.stop()
            except Exception:
                self.stop_errors += 1
                failed.append(c.name)
                log.exception("%s did not stop cleanly", c.name)
        return failed
