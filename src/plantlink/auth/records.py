"""What the auth service hands out: users, tokens, sessions. None of them carries a secret except the
one-time ``NewToken.secret`` / ``NewSession.secret``, whose ``repr`` hides it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from plantlink.errors import InvalidRequest
from plantlink.identity import ALL_SITES, ROLE_RANK, Role

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,99}$")
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    roles: dict[str, Role]
    disabled: bool
    created_us: int
    password_changed_us: int


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    name: str
    roles: dict[str, Role]
    created_us: int
    expires_us: int
    revoked_us: int | None
    last_used_us: int | None


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    secret: str = field(repr=False)  # the full bearer value "plk_<id>_<secret>", shown once


@dataclass(frozen=True)
class AuthChange:
    """What the service just changed, for live connections to re-check at once: ``kind`` "session" (key: sha256
    of its secret), "token" (its id), "display" (a display token's id) or "user" (its name); ``reason`` a code
    of ``plantlink.auth.live.REASONS`` or "roles_changed"."""

    kind: Literal["session", "token", "user", "display"]
    key: str
    reason: str


@dataclass(frozen=True)
class NewSession:
    secret: str = field(repr=False)  # the cookie value
    csrf: str = field(repr=False)
    user: User
    expires_us: int


def check_name(name: str) -> str:
    n = name.strip().lower()
    if not _NAME.match(n):
        raise InvalidRequest(f"invalid user name {name!r}: 1-100 of a-z 0-9 _ . @ - (starting with a letter/digit)")
    return n


def check_roles(roles: dict[str, str]) -> dict[str, Role]:
    out: dict[str, Role] = {}
    for site, role in roles.items():
        if site != ALL_SITES and not _SITE.match(site):
            raise InvalidRequest(f"invalid site {site!r}: a site id or '*' (every site)")
        if role not in ROLE_RANK:
            raise InvalidRequest(f"invalid role {role!r} at site {site!r}: one of {', '.join(ROLE_RANK)}")
        out[site] = role  # type: ignore[assignment]
    return out


def parse_roles(specs: list[str]) -> dict[str, Role]:
    """``["windsor=operator", "*=viewer"]`` -> ``{"windsor": "operator", "*": "viewer"}``."""
    roles: dict[str, str] = {}
    for spec in specs:
        site, sep, role = spec.partition("=")
        if not sep:
            raise InvalidRequest(f"invalid role {spec!r}: write SITE=ROLE, e.g. windsor=operator or '*=viewer'")
        roles[site.strip()] = role.strip()
    return check_roles(roles)


def role_at(roles: dict[str, Role], site: str) -> Role | None:
    return roles.get(site) or roles.get(ALL_SITES)


def within(requested: dict[str, Role], held: dict[str, Role]) -> list[str]:
    """The requested (site, role) grants that ``held`` does not cover (empty: the request is allowed)."""
    wider = []
    for site, role in requested.items():
        have = held.get(ALL_SITES) if site == ALL_SITES else role_at(held, site)
        if have is None or ROLE_RANK[have] < ROLE_RANK[role]:
            wider.append(f"{site}={role}")
    return wider


def narrow(token_roles: dict[str, Role], user_roles: dict[str, Role]) -> dict[str, Role]:
    """A token's effective roles: never more than its user holds today (roles may have been lowered since)."""
    out: dict[str, Role] = {}
    for site, role in token_roles.items():
        have = user_roles.get(ALL_SITES) if site == ALL_SITES else role_at(user_roles, site)
        if have is not None:
            out[site] = role if ROLE_RANK[role] <= ROLE_RANK[have] else have
    return out
