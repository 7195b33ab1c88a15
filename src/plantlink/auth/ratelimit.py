"""``LoginLimiter``: lock a user name or a client address out after too many failed logins.

Failures count per user name (known or not, so locking tells nothing about existence) and per client address
within ``failure_window_s``; reaching the limit locks the key for ``lockout_s``. A success clears the user's
count (not the address's). In memory, per process: a restart forgets the counts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from plantlink.auth.errors import LockedOut
from plantlink.auth.settings import AuthSettings

_MAX_KEYS = 100_000


class LoginLimiter:
    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic):
        self.s = settings
        self._clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, client: str | None) -> list[tuple[str, int]]:
        return [(f"u:{user.lower()}", 0), (f"ip:{client}", 1)] if client else [(f"u:{user.lower()}", 0)]

    def check(self, user: str, client: str | None) -> None:
        """Raise ``LockedOut`` while the user name or the client is locked."""
        now = self._clock()
        with self._lock:
            waits = [self._locked[k] - now for k, _ in self._keys(user, client) if self._locked.get(k, 0) > now]
        if waits:
            raise LockedOut(max(waits))

    def failure(self, user: str, client: str | None) -> None:
        now = self._clock()
        with self._lock:
            self._prune(now)
            for key, kind in self._keys(user, client):
                limit = self.s.max_failures if kind == 0 else self.s.max_failures_per_ip
                q = self._fails.setdefault(key, deque())
                q.append(now)
                while q and q[0] <= now - self.s.failure_window_s:
                    q.popleft()
                if len(q) >= limit:
                    self._locked[key] = now + self.s.lockout_s
                    q.clear()

    def success(self, user: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{user.lower()}", None)

    def _prune(self, now: float) -> None:
        if len(self._fails) + len(self._locked) < _MAX_KEYS:
            return
        self._locked = {k: t for k, t in self._locked.items() if t > now}
        horizon = now - self.s.failure_window_s
        self._fails = {k: q for k, q in self._fails.items() if q and q[-1] > horizon}
