"""``SessionWatch``: the credentials of open live connections (HMI pages, API streams), kept under watch.

A connection is authenticated when it opens; afterwards its session or token may be logged out, revoked,
expire, or its user be disabled or get other roles, in this process or by ``plantlink users ...`` in another.
The watch therefore

* re-checks every watched credential every ``interval`` (0.25 s): a few queries for all connections together
  (``plantlink.auth.live.check``); when one re-check costs more CPU than a tenth of that (thousands of open
  connections), the next waits ten times its cost, so the watch never takes more than about 10 % of a core;
* re-checks at once when this process's ``AuthService`` changed something (logout, disable, password reset,
  revoke, roles), ending the connections of an ended session, token or user without waiting for the query;
* answers ``verify`` (one credential, now) before an action: an HMI event, a stream subscription.

A connection whose credential ended gets ``on_end(Ended)`` once and leaves the watch; one whose roles changed
gets ``on_change(Principal)`` with the roles it holds now. Without an ``AuthService`` (principals set by other
middleware, tests) there is nothing to re-check and principals stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from plantlink.auth.live import Credential, Ended, Verdict, check
from plantlink.auth.records import AuthChange
from plantlink.identity import Principal
from plantlink.tasks import cancel_and_wait

if TYPE_CHECKING:
    from plantlink.auth.service import AuthService

log = logging.getLogger("plantlink.auth.watch")
US = 1_000_000
T = TypeVar("T")


class Watched:
    """One open connection's credential under watch; ``principal`` holds the roles as they are now."""

    def __init__(self, watch: SessionWatch, cred: Credential, principal: Principal, what: str,
                 on_end: Callable[[Ended], object], on_change: Callable[[Principal], object] | None):
        self.watch, self.cred, self.principal, self.what = watch, cred, principal, what
        self.on_end, self.on_change = on_end, on_change
        self.ended: Ended | None = None

    def close(self) -> None:
        """The connection went away: stop watching it."""
        self.watch._watched.discard(self)

    def apply(self, verdict: Verdict) -> None:
        if isinstance(verdict, Ended):
            self.end(verdict)
        elif dict(verdict.roles) != dict(self.principal.roles):
            self.principal = verdict
            log.info("%s of %s: roles are now %s", self.what, self.cred.user, dict(verdict.roles))
            if self.on_change is not None:
                _safely(self.on_change, verdict)

    def end(self, ended: Ended) -> None:
        if self.ended is not None:
            return
        self.ended = ended
        self.close()
        log.info("%s of %s closed: %s", self.what, self.cred.user, ended)
        _safely(self.on_end, ended)


def _safely(fn: Callable[[T], object], arg: T) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("a live connection's session callback failed")


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and the CPU seconds it took on this thread."""
    t0 = time.thread_time()
    return fn(), time.thread_time() - t0


def _ends(cred: Credential, change: AuthChange) -> bool:
    """Whether ``change`` (made in this process) ends connections authenticated with ``cred``."""
    if change.kind in ("session", "token", "display"):
        return cred.kind == change.kind and cred.key == change.key
    if cred.user != change.key or cred.kind == "fixed":
        return False
    return change.reason == "user_disabled" or (change.reason == "password_reset" and cred.kind == "session")


class SessionWatch:
    def __init__(self, service: AuthService | None, interval: float = 0.25, stale_after: float = 10.0):
        self.service = service
        self.interval = interval
        #: when no check succeeded for this long (store down), watched connections end ("unverifiable")
        self.stale_after = stale_after
        self.checks = 0
        #: CPU seconds of the last periodic re-check
        self.cost = 0.0
        self._watched: set[Watched] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poke: asyncio.Event | None = None
        self._last_ok = time.monotonic()
        if service is not None:
            service.add_listener(self._notify)

    @property
    def watched(self) -> int:
        return len(self._watched)

    # -- connections ------------------------------------------------------------------------------
    def watch(self, cred: Credential, principal: Principal, on_end: Callable[[Ended], object],
              on_change: Callable[[Principal], object] | None = None, what: str = "live connection") -> Watched:
        """Watch an open connection (call on the server's event loop, after ``verify`` accepted it)."""
        w = Watched(self, cred, principal, what, on_end, on_change)
        self._watched.add(w)
        self._ensure_task()
        if self.service is not None and cred.kind == "fixed":
            asyncio.get_running_loop().call_soon(w.end, Ended("unauthenticated"))
        return w

    async def verify(self, cred: Credential, principal: Principal, touch: bool = False) -> Verdict:
        """The credential's verdict now, from the store (``touch``: the check counts as the session's activity).
        Fails closed: a store error gives ``Ended("unverifiable")``."""
        svc = self.service
        if svc is None:
            return principal
        if cred.kind == "fixed":
            return Ended("unauthenticated")
        try:
            verdicts = await asyncio.to_thread(check, svc.engine, svc.settings, [cred], int(svc.clock() * US), touch)
        except Exception:
            log.exception("could not check the session of %s", cred.user)
            return Ended("unverifiable")
        return verdicts[cred]

    # -- the periodic re-check ----------------------------------------------------------------------
    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._poke = asyncio.Event()
            self._task = self._loop.create_task(self._run(), name="session-watch")

    async def _run(self) -> None:
        assert self._poke is not None
        while self._watched:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), max(self.interval, 10 * self.cost))
            self._poke.clear()
            await self.check_now()

    async def check_now(self) -> None:
        """Re-check every watched credential (one query per kind) and end or update the connections."""
        svc = self.service
        watched = list(self._watched)
        creds = {w.cred for w in watched if w.cred.kind != "fixed"}
        if svc is None or not creds:
            return
        try:
            verdicts, self.cost = await asyncio.to_thread(_timed, lambda: check(svc.engine, svc.settings, creds,
                                                                                int(svc.clock() * US)))
        except Exception:
            log.exception("could not re-check %d live sessions", len(creds))
            if time.monotonic() - self._last_ok > self.stale_after:
                for w in watched:
                    w.end(Ended("unverifiable"))
            return
        self._last_ok = time.monotonic()
        self.checks += 1
        for w in watched:
            if w.ended is None and w.cred in verdicts:
                w.apply(verdicts[w.cred])

    # -- changes made in this process ---------------------------------------------------------------
    def poke(self) -> None:
        """Re-check every watched credential now (from any thread)."""
        self._soon(lambda: self._poke.set() if self._poke is not None else None)

    def _notify(self, change: AuthChange) -> None:
        """``AuthService`` listener (any thread): handle the change on the watch's event loop."""
        self._soon(lambda: self._on_change(change))

    def _soon(self, fn: Callable[[], object]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn)

    def _on_change(self, change: AuthChange) -> None:
        for w in list(self._watched):
            if _ends(w.cred, change):
                w.end(Ended(change.reason))
        if self._poke is not None:
            self._poke.set()  # roles (and anything else) re-read now

    async def stop(self) -> None:
        for w in list(self._watched):
            w.close()
        await cancel_and_wait([self._task], "session watch")
        self._task = None


def sessions_of(state: object) -> SessionWatch:
    """The app's watch (``app.state.sessions``, set by ``install_auth``); without one, a watch with nothing to
    re-check is made (principals from other middleware)."""
    watch = getattr(state, "sessions", None)
    if not isinstance(watch, SessionWatch):
        watch = SessionWatch(getattr(state, "auth", None))
        state.sessions = watch  # type: ignore[attr-defined]
    return watch
