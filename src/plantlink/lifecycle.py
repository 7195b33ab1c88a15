"""One start/stop protocol for the parts of a running plantlink.

Every part the runtime runs (the historian, the write-ahead log, the historian writer, maintenance, the
relational store, the recorder, the engines, the notifier, the latest-value cache, the connectors) is a
``Component``: a ``name`` and ``async start()`` / ``async stop()``. Parts whose own methods differ (sync,
blocking, taking arguments) are adapted with ``Part``. A ``Lifecycle`` starts components in order and stops
the started ones in reverse order:

* a start that fails, or is cancelled (a signal while starting), stops what had started (in reverse), the part
  that was starting included, then raises: a runtime that fails halfway leaves no thread, task or open file
  behind. Work a part does in a thread is waited for before that (a thread cannot be stopped halfway);
* a stop that fails is logged and counted, and the other parts still stop (a stuck connector must not keep
  the historian from flushing).
"""

from __future__ import annotations

import asyncio
import contextlib
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
    if blocking:
        result = await _whole(asyncio.ensure_future(asyncio.to_thread(fn)))
    else:
        result = fn()
    if inspect.isawaitable(result):
        await result


async def _whole(work: asyncio.Future[object]) -> object:
    """Await work running in a thread; when the awaiting task is cancelled (a signal during a start), wait
    for the thread to finish first (it cannot be stopped halfway), then pass the cancellation on: what that
    work started is then whole, and its part's stop can undo it."""
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise


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
                log.error("%s did not start (%s); stopping it and the %d parts that started before it", c.name,
                          exc.__class__.__name__ or "cancelled", len(self._started))
                self._started.append(c)  # started halfway (a connector with its tasks): stopped too
                await self.stop()
                raise
            self._started.append(c)

    def adopt(self, component: Component) -> None:
        """Count a component its owner started itself (a connector started by a model apply) as running: it
        is stopped with the others."""
        self._started.append(component)

    def forget(self, name: str) -> None:
        """No longer count the component ``name`` as running (its owner stopped it: a model apply)."""
        self._started = [c for c in self._started if c.name != name]

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
