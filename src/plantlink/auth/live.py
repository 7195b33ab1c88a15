"""Is a live connection's credential still good? The credential of an open HMI page or API stream (a session,
an API token), checked against the store for any number of connections at once.

A connection is authenticated once, when it opens; ``check`` tells, for each credential, the principal it
stands for NOW (roles as they are now) or why it ended (``Ended``: a code and a plain sentence): one query
for the sessions, one for the tokens, one for their users (few, however many connections). Used by
``plantlink.auth.watch.SessionWatch`` (periodically and before each action) — never a secret, only hashes and ids.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from plantlink.auth.records import check_roles, narrow
from plantlink.auth.service import sha256_hex
from plantlink.auth.settings import AuthSettings
from plantlink.identity import Principal, Role
from plantlink.store.auth_tables import auth_roles, auth_sessions, auth_tokens, auth_users
from plantlink.store.floor_tables import display_tokens

US = 1_000_000
CHUNK = 500  # ids per IN (...) (SQLite's variable limit)

#: why a live connection ended: code -> the sentence shown (API close reason, HMI log and audit)
REASONS: dict[str, str] = {
    "logged_out": "the session was logged out",
    "session_ended": "the session was ended (logged out elsewhere, or by an administrator)",
    "session_expired": "the session expired",
    "session_idle": "the session ended after a long time without activity",
    "user_disabled": "the user was disabled",
    "password_reset": "the user's password was reset",
    "token_revoked": "the API token was revoked",
    "token_expired": "the API token expired",
    "display_revoked": "the display token was revoked",
    "display_expired": "the display token expired",
    "unauthenticated": "the connection has no session or token that can be checked",
    "unverifiable": "the session could not be checked (store unavailable)",
    "roles_changed": "the user's roles changed (an HMI page is rebuilt with the new ones)",
}


@dataclass(frozen=True)
class Credential:
    """What a connection was authenticated with: a session (sha256 of its secret), an API token (its id), or a
    principal set by other middleware that no store can re-check (``fixed``), or a display token (its id);
    ``user`` is the name it had."""

    kind: Literal["session", "token", "display", "fixed"]
    key: str
    user: str


@dataclass(frozen=True)
class Ended:
    code: str

    @property
    def message(self) -> str:
        return REASONS.get(self.code, self.code)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


Verdict = Principal | Ended


def credential_of(state: Mapping[str, Any] | None) -> tuple[Credential, Principal] | None:
    """The credential and principal that the auth middleware put on an ASGI scope's ``state`` (None: none)."""
    principal = (state or {}).get("principal")
    if not isinstance(principal, Principal):
        return None
    secret = (state or {}).get("session_secret")
    if principal.kind == "token" and principal.token_id:
        return Credential("token", principal.token_id, principal.name), principal
    if principal.kind == "display" and principal.token_id:
        return Credential("display", principal.token_id, principal.name), principal
    if principal.kind == "session" and isinstance(secret, str) and secret:
        return Credential("session", sha256_hex(secret), principal.name), principal
    fixed = json.dumps([principal.name, sorted(principal.roles.items())])
    return Credential("fixed", fixed, principal.name), principal


def _chunks(keys: Collection[str]) -> Iterator[list[str]]:
    items = sorted(keys)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


@dataclass(frozen=True)
class _UserNow:
    name: str
    disabled: bool
    roles: dict[str, Role]


def _rows(c: sa.Connection, q: sa.Select[Any], column: Any, keys: Collection[Any]) -> list[Any]:
    return [row for part in _chunks(keys) for row in c.execute(q.where(column.in_(part))).all()]


def _users(c: sa.Connection, ids: Collection[int]) -> dict[int, _UserNow]:
    """The users (few, however many connections) with their roles now."""
    u, r = auth_users, auth_roles
    q = sa.select(u.c.id, u.c.name, u.c.disabled, r.c.site, r.c.role).select_from(
        u.outerjoin(r, r.c.user_id == u.c.id))
    found: dict[int, tuple[str, bool, dict[str, str]]] = {}
    for row in _rows(c, q, u.c.id, ids):
        roles = found.setdefault(int(row.id), (row.name, bool(row.disabled), {}))[2]
        if row.site is not None:
            roles[row.site] = row.role
    return {i: _UserNow(name, disabled, check_roles(roles)) for i, (name, disabled, roles) in found.items()}


def _sessions(c: sa.Connection, keys: Collection[str], settings: AuthSettings, now: int,
              touch: bool) -> dict[str, Verdict]:
    s = auth_sessions
    q = sa.select(s.c.id_hash, s.c.user_id, s.c.expires_us, s.c.last_seen_us)
    found = {row.id_hash: row for row in _rows(c, q, s.c.id_hash, keys)}
    users = _users(c, {int(row.user_id) for row in found.values()})
    principals = {i: Principal(u.name, u.roles, kind="session") for i, u in users.items()}
    out: dict[str, Verdict] = {}
    idle_before = now - int(settings.session_idle_s * US)
    stale = now - int(settings.touch_interval_s * US)
    for key in keys:
        row = found.get(key)
        user = users.get(int(row.user_id)) if row is not None else None
        if row is None or user is None:
            out[key] = Ended("session_ended")
        elif user.disabled:
            out[key] = Ended("user_disabled")
        elif row.expires_us <= now:
            out[key] = Ended("session_expired")
        elif row.last_seen_us < idle_before:
            out[key] = Ended("session_idle")
        else:
            out[key] = principals[int(row.user_id)]
            if touch and row.last_seen_us < stale:
                c.execute(s.update().where(s.c.id_hash == key).values(last_seen_us=now))
    return out


def _tokens(c: sa.Connection, keys: Collection[str], now: int) -> dict[str, Verdict]:
    t = auth_tokens
    q = sa.select(t.c.id, t.c.user_id, t.c.roles, t.c.expires_us, t.c.revoked_us)
    found = {row.id: row for row in _rows(c, q, t.c.id, keys)}
    users = _users(c, {int(row.user_id) for row in found.values()})
    out: dict[str, Verdict] = {}
    for key in keys:
        row = found.get(key)
        user = users.get(int(row.user_id)) if row is not None else None
        if row is None or user is None or row.revoked_us is not None:
            out[key] = Ended("token_revoked")
        elif row.expires_us <= now:
            out[key] = Ended("token_expired")
        elif user.disabled:
            out[key] = Ended("user_disabled")
        else:
            held = narrow(check_roles(json.loads(row.roles)), user.roles)
            out[key] = Principal(user.name, held, kind="token", token_id=key)
    return out


def _displays(c: sa.Connection, keys: Collection[str], now: int) -> dict[str, Verdict]:
    from plantlink.auth.display import DisplayInfo, principal_of

    d = display_tokens
    found = {row.id: row for row in _rows(c, sa.select(d), d.c.id, keys)}
    out: dict[str, Verdict] = {}
    for key in keys:
        row = found.get(key)
        if row is None or row.revoked_us is not None:
            out[key] = Ended("display_revoked")
        elif row.expires_us <= now:
            out[key] = Ended("display_expired")
        else:
            out[key] = principal_of(DisplayInfo(row.id, row.name, row.site, row.line, row.created_by,
                                                row.created_us, row.expires_us, None, row.last_used_us))
    return out


def _disabled(c: sa.Connection, names: Collection[str]) -> set[str]:
    u = auth_users
    return {row.name for row in _rows(c, sa.select(u.c.name).where(u.c.disabled.is_(True)), u.c.name, names)}


def check(engine: sa.Engine, settings: AuthSettings, creds: Collection[Credential], now_us: int,
          touch: bool = False) -> dict[Credential, Verdict]:
    """The verdict on each session and token credential (``fixed`` ones are left out: nothing to check them
    against). ``touch`` counts the check as activity of the sessions (an HMI action, a stream subscription)."""
    sessions = {cr.key for cr in creds if cr.kind == "session"}
    tokens = {cr.key for cr in creds if cr.kind == "token"}
    displays = {cr.key for cr in creds if cr.kind == "display"}
    with engine.begin() if touch else engine.connect() as c:
        by_session = _sessions(c, sessions, settings, now_us, touch) if sessions else {}
        by_token = _tokens(c, tokens, now_us) if tokens else {}
        by_display = _displays(c, displays, now_us) if displays else {}
        gone = {cr.user for cr in creds if cr.kind == "session"
                and isinstance(by_session.get(cr.key), Ended) and by_session[cr.key] == Ended("session_ended")}
        disabled = _disabled(c, gone) if gone else set()
    out: dict[Credential, Verdict] = {}
    for cr in creds:
        if cr.kind == "session":
            v = by_session[cr.key]
            out[cr] = Ended("user_disabled") if v == Ended("session_ended") and cr.user in disabled else v
        elif cr.kind == "token":
            out[cr] = by_token[cr.key]
        elif cr.kind == "display":
            out[cr] = by_display[cr.key]
    return out
