"""``LoginThrottle``: slow password guessing down without handing anyone a way to lock an account.

Three kinds of state, each a row of ``auth_login_throttle`` in the store (so a restart keeps it):

* a **(user, address) pair**: ``pair_free_failures`` failures in a row are free; then each further failure blocks
  the pair for ``pair_backoff_s``, doubling up to ``pair_backoff_max_s``. A success clears it and marks the
  address as *known* for that user.
* a **user name** (every address) and an **address** (every name): past ``user_slow_after`` /
  ``address_slow_after`` failures within ``slow_window_s``, logins from addresses where that user never logged in
  are *slowed* to one attempt per interval (seconds), never refused for longer; known addresses are not slowed.

``admit`` checks and counts in one transaction (and under one lock in this process) before any password is
hashed: the attempt is counted as a failure at once, and ``succeeded`` takes it back. So concurrent logins
cannot all pass a check that only the failures recorded after hashing would have stopped. Refused attempts write
nothing: a flood of them cannot fill the store.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plantlink.auth.settings import AuthSettings
from plantlink.errors import LockedOut
from plantlink.store.auth_tables import auth_login_throttle as table

US = 1_000_000
UNKNOWN_ADDRESS = "unknown"
PURGE_EVERY_S = 60.0
_RETRIES = 3


@dataclass
class ThrottleState:
    """A pair (user and address), a user name (``address`` None) or an address (``user`` None)."""

    key: str
    user: str | None
    address: str | None
    failures: int = 0
    window_start_us: int = 0
    blocked_until_us: int = 0
    last_failure_us: int | None = None
    last_success_us: int | None = None
    stored: bool = False


@dataclass(frozen=True)
class UserLogins:
    """What the throttle knows of one user name: failures counted now, blocked until (over every address),
    and the last successful login it remembers (None when forgotten or never)."""

    failures: int
    blocked_until_us: int
    last_login_us: int | None


def _key(user: str | None, address: str | None) -> str:
    return hashlib.sha256(f"{user}\0{address}\0{user is None}{address is None}".encode()).hexdigest()


def _norm(user: str, address: str | None) -> tuple[str, str]:
    return user.strip().lower()[:100] or "?", (address or UNKNOWN_ADDRESS).strip().lower()[:100]


class LoginThrottle:
    def __init__(self, engine: sa.Engine, settings: AuthSettings, clock: Callable[[], float]):
        self.engine = engine
        self.s = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._last_purge_us = 0

    def _now_us(self) -> int:
        return int(self.clock() * US)

    # -- the login path -----------------------------------------------------------------------------
    def admit(self, user: str, address: str | None) -> None:
        """Let one attempt of ``user`` from ``address`` through, counted as a failure until ``succeeded``;
        or raise ``LockedOut`` (nothing is written then)."""
        user, address = _norm(user, address)
        for attempt in range(_RETRIES):
            now = self._now_us()
            try:
                with self._lock, self.engine.begin() as c:
                    self._maybe_purge(c, now)
                    rows = self._load(c, user, address)
                    wait = self._wait_us(rows, now)
                    if wait <= 0:
                        self._count(rows, now)
                        self._save(c, rows, now)
            except sa.exc.IntegrityError:  # another process inserted one of the rows first: read them again
                if attempt == _RETRIES - 1:
                    raise
                continue
            if wait > 0:
                raise LockedOut(wait / US)
            return

    def succeeded(self, user: str, address: str | None) -> None:
        """The admitted attempt was right: clear the pair (the address is now known) and take the provisional
        failure back from the user's and the address's counts."""
        user, address = _norm(user, address)
        now = self._now_us()
        with self._lock, self.engine.begin() as c:
            pair, by_user, by_address = self._load(c, user, address)
            pair.failures, pair.blocked_until_us, pair.last_success_us = 0, 0, now
            for row in (by_user, by_address):
                row.failures = max(0, row.failures - 1)
            self._save(c, [pair, *(r for r in (by_user, by_address) if r.stored)], now)

    # -- administration -------------------------------------------------------------------------------
    def clear(self, user: str | None = None, address: str | None = None) -> int:
        """Forget the failures and blocks of a user (its pairs and its name), of an address (its pairs and
        the address), or of one pair when both are given. Known addresses stay known. Returns the rows reset."""
        if user is None and address is None:
            raise ValueError("clear needs a user, an address or both")
        q = table.update()
        if user is not None:
            q = q.where(table.c.user_name == user.strip().lower())
        if address is not None:
            q = q.where(table.c.address == address.strip().lower())
        if user is not None and address is not None:
            q = q.where(table.c.address.is_not(None))
        now = self._now_us()
        with self._lock, self.engine.begin() as c:
            return int(c.execute(q.values(failures=0, blocked_until_us=0, window_start_us=now,
                                          updated_us=now)).rowcount)

    def state(self, user: str | None = None, active_only: bool = False) -> list[ThrottleState]:
        """The stored rows (of ``user``; only those with failures or a block when ``active_only``)."""
        q = sa.select(table).order_by(table.c.user_name, table.c.address)
        if user is not None:
            q = q.where(table.c.user_name == user.strip().lower())
        if active_only:
            q = q.where(sa.or_(table.c.failures > 0, table.c.blocked_until_us > self._now_us()))
        with self.engine.connect() as c:
            return [_state(r) for r in c.execute(q)]

    def by_user(self) -> dict[str, UserLogins]:
        """Per user name, what its rows (every address, and the name) say: for an account overview."""
        out: dict[str, UserLogins] = {}
        for r in self.state():
            if r.user is None:
                continue
            was = out.get(r.user, UserLogins(0, 0, None))
            last = max((t for t in (was.last_login_us, r.last_success_us) if t is not None), default=None)
            out[r.user] = UserLogins(was.failures + r.failures * (r.address is not None),
                                     max(was.blocked_until_us, r.blocked_until_us), last)
        return out

    # -- rules ------------------------------------------------------------------------------------------
    def _wait_us(self, rows: list[ThrottleState], now: int) -> int:
        pair, by_user, by_address = rows
        self._expire(rows, now)
        waits = [pair.blocked_until_us - now]
        if not self._known(pair, now):
            waits += [by_user.blocked_until_us - now, by_address.blocked_until_us - now]
        return max(waits)

    def _known(self, pair: ThrottleState, now: int) -> bool:
        return pair.last_success_us is not None and pair.last_success_us >= now - int(self.s.known_address_s * US)

    def _expire(self, rows: list[ThrottleState], now: int) -> None:
        pair, by_user, by_address = rows
        if pair.last_failure_us is not None and now - pair.last_failure_us >= int(self.s.pair_forget_s * US):
            pair.failures, pair.blocked_until_us = 0, 0
        for row in (by_user, by_address):
            if now - row.window_start_us >= int(self.s.slow_window_s * US):
                row.failures, row.window_start_us, row.blocked_until_us = 0, now, 0

    def _count(self, rows: list[ThrottleState], now: int) -> None:
        pair, by_user, by_address = rows
        pair.failures += 1
        pair.last_failure_us = now
        if pair.failures >= self.s.pair_free_failures:
            steps = min(pair.failures - self.s.pair_free_failures, 30)
            pair.blocked_until_us = now + int(min(self.s.pair_backoff_s * 2 ** steps, self.s.pair_backoff_max_s) * US)
        for row, after, interval in ((by_user, self.s.user_slow_after, self.s.user_slow_interval_s),
                                     (by_address, self.s.address_slow_after, self.s.address_slow_interval_s)):
            row.failures += 1
            row.last_failure_us = now
            if row.failures >= after:
                row.blocked_until_us = now + int(interval * US)

    # -- rows -------------------------------------------------------------------------------------------
    def _load(self, c: sa.Connection, user: str, address: str) -> list[ThrottleState]:
        """The pair's, the user's and the address's rows (fresh ones where none is stored), locked for update
        where the database can (PostgreSQL); SQLite serialises writers anyway."""
        wanted = [ThrottleState(_key(user, address), user, address), ThrottleState(_key(user, None), user, None),
                  ThrottleState(_key(None, address), None, address)]
        q = sa.select(table).where(table.c.key.in_([w.key for w in wanted])).with_for_update()
        found = {r.key: _state(r) for r in c.execute(q)}
        return [found.get(w.key, w) for w in wanted]

    def _save(self, c: sa.Connection, rows: Iterable[ThrottleState], now: int) -> None:
        for row in rows:
            values: dict[str, Any] = {
                "failures": row.failures, "window_start_us": row.window_start_us or now,
                "blocked_until_us": row.blocked_until_us, "last_failure_us": row.last_failure_us,
                "last_success_us": row.last_success_us, "updated_us": now}
            if row.stored:
                c.execute(table.update().where(table.c.key == row.key).values(**values))
            else:
                c.execute(table.insert().values(key=row.key, user_name=row.user, address=row.address, **values))
                row.stored = True

    def _maybe_purge(self, c: sa.Connection, now: int) -> None:
        """Delete rows nobody needs any more (no block, nothing to remember, no recent success), once a minute."""
        if now - self._last_purge_us < int(PURGE_EVERY_S * US):
            return
        self._last_purge_us = now
        horizon = max(self.s.pair_forget_s, self.s.slow_window_s, self.s.pair_backoff_max_s)
        c.execute(table.delete().where(
            table.c.updated_us < now - int(horizon * US), table.c.blocked_until_us < now,
            sa.or_(table.c.last_success_us.is_(None),
                   table.c.last_success_us < now - int(self.s.known_address_s * US))))


def _state(r: Any) -> ThrottleState:
    return ThrottleState(r.key, r.user_name, r.address, int(r.failures), int(r.window_start_us),
                         int(r.blocked_until_us), r.last_failure_us, r.last_success_us, stored=True)
