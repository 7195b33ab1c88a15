"""``AuthService``: users, per-site roles, password logins, browser sessions, API tokens, and their audit.

Built on the relational store's engine (``AuthService(engine, data_dir)`` or ``AuthService.open(data_dir)``);
the per-installation key (CSRF tokens) is in the store (``auth_keys``, adopted from ``data_dir/secrets/csrf.key``
when the store has none), so every API process on one store checks the others' CSRF tokens. Blocking calls
(argon2, SQL): the web layer runs them in a thread.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TextIO

import sqlalchemy as sa

from plantlink.audit import AuditLog
from plantlink.auth import repo
from plantlink.auth.display import DisplayTokens
from plantlink.auth.keys import secrets_dir, shared_key, write_secret_file
from plantlink.auth.passwords import Passwords, generate_password
from plantlink.auth.pool import LoginPool
from plantlink.auth.records import (
    AuthChange,
    NewSession,
    NewToken,
    TokenInfo,
    User,
    check_name,
    check_roles,
    narrow,
    within,
)
from plantlink.auth.settings import AuthSettings
from plantlink.auth.throttle import LoginThrottle
from plantlink.errors import AuthFailed, InvalidRequest, LockedOut, UserNotFound
from plantlink.identity import Principal, Role

log = logging.getLogger(__name__)
US = 1_000_000
TOKEN_PREFIX = "plk_"
#: where the first-run admin password goes when stderr is not a terminal (under the data dir's secrets/)
FIRST_ADMIN_FILE = "first-run-admin-password"


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cli_actor() -> str:
    """The audit actor of a command-line change: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class AuthService:
    def __init__(self, engine: sa.Engine, data_dir: str | Path, settings: AuthSettings | None = None,
                 clock: Callable[[], float] = time.time):
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.settings = settings or AuthSettings()
        self.clock = clock
        self.passwords = Passwords(self.settings)
        self.throttle = LoginThrottle(engine, self.settings, clock)
        #: where the web layer runs ``login`` (bounded: see ``LoginPool``)
        self.login_pool = LoginPool(self.settings.login_workers, self.settings.login_queue)
        self.audit = AuditLog(engine, clock)
        secrets_dir(self.data_dir)  # the data directory's secrets/ (the first-run admin password, TLS keys)
        self._csrf_key = shared_key(engine, self.data_dir, "csrf.key")  # one key for every API replica
        self._owned_store: object | None = None
        self._first_admin_lock = threading.Lock()
        self._listeners: list[Callable[[AuthChange], None]] = []
        #: read-only wallboard credentials (``plantlink.auth.display``)
        self.displays = DisplayTokens(self)

    @classmethod
    def open(cls, data_dir: str | Path, store_url: str | None = None, settings: AuthSettings | None = None,
             clock: Callable[[], float] = time.time) -> AuthService:
        """Open the store (default: the SQLite file under ``data_dir``), migrating it; ``close()`` when done."""
        from plantlink.store import Store, default_url

        store = Store.open(store_url or default_url(data_dir))
        svc = cls(store.engine, data_dir, settings, clock)
        svc._owned_store = store
        return svc

    def close(self) -> None:
        self.login_pool.close()
        if self._owned_store is not None:
            self._owned_store.close()  # type: ignore[attr-defined]

    def _now_us(self) -> int:
        return int(self.clock() * US)

    def add_listener(self, listener: Callable[[AuthChange], None]) -> None:
        """Call ``listener`` (from any thread) after a session, token or user changed in this process: live
        connections re-check at once (changes by other processes are found by their periodic re-check)."""
        self._listeners.append(listener)

    def _changed(self, kind: Literal["session", "token", "user", "display"], key: str, reason: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(AuthChange(kind, key, reason))
            except Exception:
                log.exception("an auth change listener failed")

    # -- users -----------------------------------------------------------------------------------
    def create_user(self, name: str, roles: dict[str, str], actor: str, password: str | None = None) -> tuple[
            User, str | None]:
        """Create a user; returns it and the generated password when none was given (show it once)."""
        name, clean = check_name(name), check_roles(roles)
        generated = generate_password() if password is None else None
        pw_hash = self.passwords.hash(password if password is not None else generated)  # type: ignore[arg-type]
        with self.engine.begin() as c:
            if repo.find_user(c, name) is not None:
                raise InvalidRequest(f"user {name!r} exists already")
            repo.insert_user(c, name, pw_hash, dict(clean), self._now_us())
            user = repo.get_user(c, name)
        self.audit.record("auth.user_created", actor, target=name, details={"roles": dict(clean)})
        return user, generated

    def user(self, name: str) -> User:
        with self.engine.connect() as c:
            return repo.get_user(c, check_name(name))

    def users(self) -> list[User]:
        with self.engine.connect() as c:
            return repo.list_users(c)

    def has_users(self) -> bool:
        with self.engine.connect() as c:
            return repo.count_users(c) > 0

    def set_roles(self, name: str, roles: dict[str, str], actor: str) -> User:
        clean = check_roles(roles)
        with self.engine.begin() as c:
            user = repo.get_user(c, check_name(name))
            repo.set_roles(c, user.id, dict(clean))
        self._changed("user", user.name, "roles_changed")
        self.audit.record("auth.roles_changed", actor, target=user.name,
                          details={"before": dict(user.roles), "after": dict(clean)})
        return self.user(user.name)

    def set_disabled(self, name: str, disabled: bool, actor: str) -> User:
        """Disable (every session ends, tokens stop working) or enable a user."""
        with self.engine.begin() as c:
            user = repo.get_user(c, check_name(name))
            repo.update_user(c, user.id, disabled=disabled)
            ended = repo.delete_sessions_of(c, user.id) if disabled else 0
        if disabled:
            self._changed("user", user.name, "user_disabled")
        kind = "auth.user_disabled" if disabled else "auth.user_enabled"
        self.audit.record(kind, actor, target=user.name, details={"sessions_ended": ended})
        return self.user(user.name)

    def reset_password(self, name: str, actor: str, password: str | None = None) -> str | None:
        """Set a new password (generated when None: returned, show it once); every session of the user ends."""
        generated = generate_password() if password is None else None
        new = password if password is not None else generated
        assert new is not None
        user, ended = self._set_password(name, new)
        self.audit.record("auth.password_reset", actor, target=user.name,
                          details={"generated": generated is not None, "sessions_ended": ended})
        return generated

    def change_password(self, name: str, current: str, new: str, client: str | None = None) -> int:
        """A user changes their own password: ``current`` is checked like a login (throttled, audited;
        AuthFailed when wrong), ``new`` must meet the password rules (InvalidRequest). Every session of the
        user ends, this one too (log in again with the new password). Returns how many sessions ended."""
        user = self.authenticate(name, current, client)
        if new == current:
            raise InvalidRequest("the new password is the same as the current one")
        _, ended = self._set_password(user.name, new)
        self.audit.record("auth.password_changed", user.name, target=user.name, details={"sessions_ended": ended})
        return ended

    def _set_password(self, name: str, password: str) -> tuple[User, int]:
        pw_hash = self.passwords.hash(password)
        with self.engine.begin() as c:
            user = repo.get_user(c, check_name(name))
            repo.update_user(c, user.id, password_hash=pw_hash, password_changed_us=self._now_us())
            ended = repo.delete_sessions_of(c, user.id)
        self._changed("user", user.name, "password_reset")
        self.throttle.clear(user=user.name)
        return user, ended

    def unlock(self, name: str, actor: str, address: str | None = None) -> int:
        """Clear the login throttle of a user (every address, or only ``address``); returns the records reset."""
        user = self.user(name)
        cleared = self.throttle.clear(user=user.name, address=address)
        self.audit.record("auth.unlocked", actor, target=user.name, details={"address": address, "records": cleared})
        return cleared

    def ensure_admin(self, stream: TextIO | None = None) -> str | None:
        """First run: when no user exists, create ``admin`` (admin at every site) with a generated password,
        shown once and never logged: written to ``stream`` (stderr) when it is a terminal; otherwise (stderr
        redirected to a log file, a journal) written to ``<data_dir>/secrets/first-run-admin-password`` (0600) and
        only that path is shown. Returns the password, or None if users exist."""
        with self._first_admin_lock:
            if self.has_users():
                return None
            _, password = self.create_user("admin", {"*": "admin"}, actor="system:first-run")
        assert password is not None
        out = stream if stream is not None else sys.stderr
        rule = "=" * 72
        if _is_terminal(out):
            out.write(f"\n{rule}\nplantlink first run: created user 'admin' (admin at every site).\n"
                      f"  password: {password}\nIt is shown only this once. Change it with "
                      f"`plantlink users reset-password admin`.\n{rule}\n")
        else:
            path = write_secret_file(self.data_dir, FIRST_ADMIN_FILE, password + "\n")
            out.write(f"\n{rule}\nplantlink first run: created user 'admin' (admin at every site). This output is "
                      f"not a terminal, so its password is not shown here:\nit is in {path} (readable only by "
                      "this user). Read it, delete the file, and change the password with\n"
                      f"`plantlink users reset-password admin`.\n{rule}\n")
        out.flush()
        return password

    # -- logins and sessions -----------------------------------------------------------------------
    def authenticate(self, name: str, password: str, client: str | None = None) -> User:
        """Check a password (throttled, audited). Unknown, disabled and wrong all fail alike, and an
        unknown user costs one argon2 verification like a known one. The throttle admits and counts the attempt
        before the password is hashed (see ``LoginThrottle``)."""
        shown = name.strip().lower()[:100] or "?"
        try:
            self.throttle.admit(shown, client)
        except LockedOut:
            self.audit.record("auth.login_failed", shown, details={"reason": "locked", "client": client})
            raise
        with self.engine.connect() as c:
            found = _find(c, shown)
        stored = found[1] if found else self.passwords.dummy_hash
        ok = self.passwords.verify(stored, password)
        if not ok or found is None or found[0].disabled:
            reason = "disabled" if ok and found is not None else "bad_credentials"
            self.audit.record("auth.login_failed", shown, details={"reason": reason, "client": client})
            raise AuthFailed()
        user = found[0]
        self.throttle.succeeded(shown, client)
        if self.passwords.needs_rehash(stored):
            with self.engine.begin() as c:
                repo.update_user(c, user.id, password_hash=self.passwords.hash(password))
        return user

    def login(self, name: str, password: str, client: str | None = None) -> NewSession:
        """Authenticate and open a browser session; returns the cookie secret and its CSRF token."""
        user = self.authenticate(name, password, client)
        secret = secrets.token_urlsafe(32)
        now = self._now_us()
        expires = now + int(self.settings.session_ttl_s * US)
        with self.engine.begin() as c:
            repo.purge_sessions(c, now, now - int(self.settings.session_idle_s * US))
            repo.insert_session(c, sha256_hex(secret), user.id, now, expires, client)
        self.audit.record("auth.login", user.name, details={"client": client, "method": "password"})
        log.info("user %s logged in from %s", user.name, client)
        return NewSession(secret, self.csrf_token(secret), user, expires)

    def csrf_token(self, session_secret: str) -> str:
        """The session's CSRF token: HMAC of the session secret under the installation key (no storage)."""
        return hmac.new(self._csrf_key, b"csrf:" + session_secret.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session_secret: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(session_secret), presented)

    def session_principal(self, secret: str) -> Principal | None:
        """The principal of a live session cookie, or None (unknown, expired, idle, user disabled)."""
        if not secret or len(secret) > 200:
            return None
        id_hash, now = sha256_hex(secret), self._now_us()
        with self.engine.connect() as c:
            row = repo.get_session(c, id_hash)
            user = repo.user_by_id(c, int(row.user_id)) if row is not None else None
        if row is None or user is None or user.disabled:
            return None
        if row.expires_us <= now or row.last_seen_us < now - int(self.settings.session_idle_s * US):
            with self.engine.begin() as c:
                repo.delete_session(c, id_hash)
            return None
        if now - row.last_seen_us >= int(self.settings.touch_interval_s * US):
            with self.engine.begin() as c:
                repo.touch_session(c, id_hash, now)
        return Principal(user.name, dict(user.roles), kind="session")

    def logout(self, secret: str, actor: str) -> None:
        with self.engine.begin() as c:
            gone = repo.delete_session(c, sha256_hex(secret))
        if gone:
            self._changed("session", sha256_hex(secret), "logged_out")
            self.audit.record("auth.logout", actor)

    # -- API tokens --------------------------------------------------------------------------------
    def create_token(self, user: str, name: str, roles: dict[str, str] | None, actor: str,
                     days: float | None = None, actor_roles: dict[str, Role] | None = None) -> NewToken:
        """A token for ``user`` with ``roles`` (default: the user's own), never more than the user holds nor
        (when given) than ``actor_roles`` (the creator's). Expires after ``days``."""
        days = self.settings.token_default_days if days is None else days
        if not 0 < days <= self.settings.token_max_days:
            raise InvalidRequest(f"token lifetime must be > 0 and <= {self.settings.token_max_days:g} days")
        if not name.strip() or len(name) > 100:
            raise InvalidRequest("a token needs a name of 1-100 characters (what it is for)")
        owner = self.user(user)
        wanted = check_roles(roles) if roles is not None else dict(owner.roles)
        if not wanted:
            raise InvalidRequest("a token needs at least one SITE=ROLE")
        for holder, held in (("the user", owner.roles), ("the creator", actor_roles)):
            wider = within(wanted, held) if held is not None else []
            if wider:
                raise InvalidRequest(f"token scope exceeds what {holder} holds: {', '.join(wider)}")
        if owner.disabled:
            raise InvalidRequest(f"user {owner.name!r} is disabled")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self._now_us()
        with self.engine.begin() as c:
            repo.insert_token(c, token_id, owner.id, name.strip(), sha256_hex(secret), dict(wanted), now,
                              now + int(days * 86400 * US))
            info = repo.get_token(c, token_id)
        assert info is not None
        self.audit.record("auth.token_created", actor, target=owner.name,
                          details={"token_id": token_id, "name": name.strip(), "roles": dict(wanted), "days": days})
        return NewToken(info[0], f"{TOKEN_PREFIX}{token_id}_{secret}")

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self.engine.connect() as c:
            uid = repo.get_user(c, check_name(user)).id if user is not None else None
            return repo.list_tokens(c, uid)

    def revoke_token(self, token_id: str, actor: str) -> TokenInfo:
        with self.engine.begin() as c:
            found = repo.get_token(c, token_id)
            if found is None:
                raise InvalidRequest(f"no token with id {token_id!r}")
            if found[0].revoked_us is None:
                repo.update_token(c, token_id, revoked_us=self._now_us())
        self._changed("token", token_id, "token_revoked")
        self.audit.record("auth.token_revoked", actor, target=found[0].user, details={"token_id": token_id})
        return self.tokens_by_id(token_id)

    def tokens_by_id(self, token_id: str) -> TokenInfo:
        with self.engine.connect() as c:
            found = repo.get_token(c, token_id)
        if found is None:
            raise InvalidRequest(f"no token with id {token_id!r}")
        return found[0]

    def token_principal(self, bearer: str) -> Principal | None:
        """The principal of ``plk_<id>_<secret>``, or None (garbled, unknown, wrong secret, expired, revoked,
        user disabled). Its roles are narrowed to what the user holds now."""
        token_id, secret = _split_token(bearer)
        if token_id is None or secret is None:
            return None
        now = self._now_us()
        with self.engine.connect() as c:
            found = repo.get_token(c, token_id)
            user = repo.user_by_id(c, found[2]) if found is not None else None
        good = found is not None and hmac.compare_digest(found[1], sha256_hex(secret))
        if not good or found is None or user is None:
            return None
        info = found[0]
        if user.disabled or info.revoked_us is not None or info.expires_us <= now:
            return None
        if info.last_used_us is None or now - info.last_used_us >= int(self.settings.touch_interval_s * US):
            with self.engine.begin() as c:
                repo.update_token(c, token_id, last_used_us=now)
        return Principal(user.name, narrow(info.roles, user.roles), kind="token", token_id=token_id)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _find(c: sa.Connection, name: str) -> tuple[User, str] | None:
    try:
        return repo.find_user(c, check_name(name))
    except (InvalidRequest, UserNotFound):
        return None


def _split_token(bearer: str) -> tuple[str | None, str | None]:
    if not bearer.startswith(TOKEN_PREFIX) or len(bearer) > 200:
        return None, None
    token_id, sep, secret = bearer[len(TOKEN_PREFIX):].partition("_")
    if not sep or len(token_id) != 16 or not secret or any(ch not in "0123456789abcdef" for ch in token_id):
        return None, None
    return token_id, secret
