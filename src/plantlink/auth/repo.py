"""SQL of the identity tables (SQLAlchemy Core); each function runs on the connection it is given."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from plantlink.auth.records import TokenInfo, User, check_roles
from plantlink.errors import UserNotFound
from plantlink.store.auth_tables import auth_roles, auth_sessions, auth_tokens, auth_users


# -- users -------------------------------------------------------------------------------------------
def count_users(c: sa.Connection) -> int:
    return int(c.execute(sa.select(sa.func.count()).select_from(auth_users)).scalar_one())


def _roles_of(c: sa.Connection, user_ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {i: {} for i in user_ids}
    if user_ids:
        q = sa.select(auth_roles).where(auth_roles.c.user_id.in_(user_ids))
        for r in c.execute(q):
            out[int(r.user_id)][r.site] = r.role
    return out


def _user(row: Any, roles: dict[str, Any]) -> User:
    return User(int(row.id), row.name, roles, bool(row.disabled), int(row.created_us), int(row.password_changed_us))


def find_user(c: sa.Connection, name: str) -> tuple[User, str] | None:
    """The user and its password hash, or None."""
    row = c.execute(sa.select(auth_users).where(auth_users.c.name == name)).first()
    if row is None:
        return None
    return _user(row, _roles_of(c, [int(row.id)])[int(row.id)]), str(row.password_hash)


def get_user(c: sa.Connection, name: str) -> User:
    found = find_user(c, name)
    if found is None:
        raise UserNotFound(name)
    return found[0]


def user_by_id(c: sa.Connection, user_id: int) -> User | None:
    row = c.execute(sa.select(auth_users).where(auth_users.c.id == user_id)).first()
    return None if row is None else _user(row, _roles_of(c, [user_id])[user_id])


def list_users(c: sa.Connection) -> list[User]:
    rows = c.execute(sa.select(auth_users).order_by(auth_users.c.name)).all()
    roles = _roles_of(c, [int(r.id) for r in rows])
    return [_user(r, roles[int(r.id)]) for r in rows]


def insert_user(c: sa.Connection, name: str, password_hash: str, roles: dict[str, str], now_us: int) -> int:
    res = c.execute(auth_users.insert().values(name=name, password_hash=password_hash, disabled=False,
                                               created_us=now_us, password_changed_us=now_us))
    user_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    set_roles(c, user_id, roles)
    return user_id


def set_roles(c: sa.Connection, user_id: int, roles: dict[str, str]) -> None:
    c.execute(auth_roles.delete().where(auth_roles.c.user_id == user_id))
    if roles:
        c.execute(auth_roles.insert(), [{"user_id": user_id, "site": s, "role": r} for s, r in roles.items()])


def update_user(c: sa.Connection, user_id: int, **values: Any) -> None:
    c.execute(auth_users.update().where(auth_users.c.id == user_id).values(**values))


# -- tokens ------------------------------------------------------------------------------------------
def _token(row: Any) -> TokenInfo:
    return TokenInfo(row.id, row.user, row.name, check_roles(json.loads(row.roles)), int(row.created_us),
                     int(row.expires_us), row.revoked_us, row.last_used_us)


def _token_select() -> sa.Select[Any]:
    return sa.select(auth_tokens, auth_users.c.name.label("user")).join(
        auth_users, auth_users.c.id == auth_tokens.c.user_id)


def insert_token(c: sa.Connection, token_id: str, user_id: int, name: str, secret_hash: str,
                 roles: dict[str, str], now_us: int, expires_us: int) -> None:
    c.execute(auth_tokens.insert().values(id=token_id, user_id=user_id, name=name, secret_hash=secret_hash,
                                          roles=json.dumps(roles, sort_keys=True), created_us=now_us,
                                          expires_us=expires_us))


def get_token(c: sa.Connection, token_id: str) -> tuple[TokenInfo, str, int] | None:
    """The token, its secret hash and its user id."""
    row = c.execute(_token_select().where(auth_tokens.c.id == token_id)).first()
    return None if row is None else (_token(row), str(row.secret_hash), int(row.user_id))


def list_tokens(c: sa.Connection, user_id: int | None = None) -> list[TokenInfo]:
    q = _token_select().order_by(auth_tokens.c.created_us, auth_tokens.c.id)
    if user_id is not None:
        q = q.where(auth_tokens.c.user_id == user_id)
    return [_token(r) for r in c.execute(q)]


def update_token(c: sa.Connection, token_id: str, **values: Any) -> int:
    return c.execute(auth_tokens.update().where(auth_tokens.c.id == token_id).values(**values)).rowcount


# -- sessions ----------------------------------------------------------------------------------------
def insert_session(c: sa.Connection, id_hash: str, user_id: int, now_us: int, expires_us: int,
                   client: str | None) -> None:
    c.execute(auth_sessions.insert().values(id_hash=id_hash, user_id=user_id, created_us=now_us,
                                            expires_us=expires_us, last_seen_us=now_us, client=client))


def get_session(c: sa.Connection, id_hash: str) -> Any:
    return c.execute(sa.select(auth_sessions).where(auth_sessions.c.id_hash == id_hash)).first()


def touch_session(c: sa.Connection, id_hash: str, now_us: int) -> None:
    c.execute(auth_sessions.update().where(auth_sessions.c.id_hash == id_hash).values(last_seen_us=now_us))


def delete_session(c: sa.Connection, id_hash: str) -> int:
    return c.execute(auth_sessions.delete().where(auth_sessions.c.id_hash == id_hash)).rowcount


def delete_sessions_of(c: sa.Connection, user_id: int) -> int:
    return c.execute(auth_sessions.delete().where(auth_sessions.c.user_id == user_id)).rowcount


def purge_sessions(c: sa.Connection, now_us: int, idle_before_us: int) -> int:
    q = auth_sessions.delete().where(sa.or_(auth_sessions.c.expires_us <= now_us,
                                            auth_sessions.c.last_seen_us < idle_before_us))
    return c.execute(q).rowcount
