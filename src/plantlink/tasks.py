"""Stopping asyncio tasks that may not take the first cancellation.

``task.cancel()`` followed by ``await task`` hangs for good when the task swallows the cancellation and goes
on: a reconnect loop whose client turns the ``CancelledError`` into its own error on the way out (aiomqtt's
``__aexit__`` raises ``MqttError`` when the broker does not acknowledge the disconnect in time), or Python
3.11's ``asyncio.wait_for``, which returns the inner result and drops a cancellation that arrives as the inner
future completes. ``cancel_and_wait`` cancels again until the tasks end, and gives up (logged, never hanging
the caller) after ``limit`` seconds. Loops that catch broad exceptions should also check a stop flag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("plantlink.tasks")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None], what: str, limit: float = 30.0,
                          every: float = 1.0) -> bool:
    """Cancel ``tasks`` and wait until they end, cancelling again every ``every`` seconds; True when all
    ended, False (logged) when some still run after ``limit`` seconds. Their results and errors are dropped."""
    given = [t for t in tasks if t is not None]
    pending = {t for t in given if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while pending:
        for t in pending:
            t.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.error("%s: %d task(s) did not stop within %.0f s: %s", what, len(pending), limit,
                      ", ".join(sorted(t.get_name() for t in pending)))
            return False
        _, pending = await asyncio.wait(pending, timeout=min(every, left))
    for t in given:  # retrieved, so asyncio does not log "exception was never retrieved" for them
        if not t.cancelled():
            t.exception()
    return True
