"""``LoginPool``: password checks on a few threads of their own, with a bounded queue.

argon2 is built to be slow and to take memory (64 MiB a check by default). Run on the event loop's default
thread pool, a burst of logins took every thread that authenticated requests need for their session lookups, and
as much memory as there were checks at once. Here logins run on ``workers`` threads of their own (at a lower CPU
priority where the OS allows), at most ``queue`` more wait, and anything beyond is refused at once with
``Busy`` (HTTP 503 with Retry-After) before any work is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from plantlink.auth.page import CSP, login_page
from plantlink.errors import Busy

log = logging.getLogger(__name__)
T = TypeVar("T")
#: niceness of the login threads (and of argon2's own threads, which inherit it): requests of people already
#: logged in are scheduled first when both want the CPU
LOGIN_NICE = 19
WARN_EVERY_S = 60.0


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # Linux: a thread id names one thread
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOGIN_NICE)


class LoginPool:
    def __init__(self, workers: int = 0, queue: int = 32):
        """``workers`` 0: half the CPUs, at least 1, at most 4."""
        workers = workers or max(1, min(4, (os.cpu_count() or 2) // 2))
        if workers < 1 or queue < 0:
            raise ValueError("a login pool needs at least one worker and a queue of 0 or more")
        self.workers, self.queue = workers, queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="plantlink-login", initializer=_lower_priority)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._avg_s = 0.25  # running mean of one check's duration, for Retry-After
        self.refused = 0
        self._warned = 0.0

    @property
    def in_flight(self) -> int:
        """Running plus waiting."""
        return self._in_flight

    def full(self) -> bool:
        return self._in_flight >= self.workers + self.queue

    def refuse(self) -> Busy:
        """Count a refused login; the error to answer it with (Retry-After: the time to drain the queue)."""
        self.refused += 1
        self._warn()
        return Busy(self._in_flight / self.workers * self._avg_s)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a login thread; ``Busy`` at once when ``workers + queue`` are taken."""
        with self._lock:
            if self.full():
                raise self.refuse()
            self._in_flight += 1
        try:
            fut = self._executor.submit(self._timed, fn, *args)
        except RuntimeError:  # shut down
            self._release()
            raise
        fut.add_done_callback(lambda f: self._release() if f.cancelled() else None)  # never ran
        return await asyncio.wrap_future(fut)

    def _release(self, took: float | None = None) -> None:
        with self._lock:
            self._in_flight -= 1
            if took is not None:
                self._avg_s = 0.8 * self._avg_s + 0.2 * took

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:  # released here, on the worker, so a request whose client left still holds its place
            self._release(time.perf_counter() - t0)

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_S:
            self._warned = now
            log.warning("logins refused: %d at once already (%d password checks, %d waiting); %d refused so far",
                        self._in_flight, self.workers, self.queue, self.refused)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class LoginShedding:
    """ASGI middleware: while the pool is full, a login (``POST`` to one of ``api_paths`` or ``form_paths``) is
    answered 503 with Retry-After before anything else runs (no routing, no body parsing), after ``delay_s``: a
    flood of logins costs the event loop as little as possible and authenticated requests keep their pace. API
    logins get the JSON envelope, the login form its page with the message."""

    def __init__(self, app: ASGIApp, pool: LoginPool, api_paths: tuple[str, ...], form_paths: tuple[str, ...] = (),
                 delay_s: float = 0.0):
        self.app, self.pool, self.delay_s = app, pool, delay_s
        self.api_paths, self.form_paths = frozenset(api_paths), frozenset(form_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self.pool.full() \
                or scope["path"] not in self.api_paths | self.form_paths:
            await self.app(scope, receive, send)
            return
        busy = self.pool.refuse()
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        if scope["path"] in self.api_paths:
            body = json.dumps({"error": {"status": 503, "code": "busy", "message": str(busy)}}).encode()
            headers = [(b"content-type", b"application/json")]
        else:
            body = login_page(str(busy)).encode()
            headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-security-policy", CSP.encode())]
        await send({"type": "http.response.start", "status": 503, "headers": [
            *headers, (b"content-length", str(len(body)).encode()), (b"retry-after", str(busy.retry_after).encode()),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
