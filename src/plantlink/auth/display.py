"""Display tokens: read-only credentials of shop-floor wallboards (``/hmi/wall/...``).

An administrator at every site creates one for a site, or for one line of it (``DisplayTokens.create``: the
secret ``pld_<id>_<secret>`` is shown once). A TV opens ``/hmi/wall/<line>?display=<token>``: the auth
middleware exchanges the token for a display cookie (the same value, HttpOnly, SameSite=Strict) and redirects
to the URL without it. The principal it stands for (``display:<name>``, kind ``display``, viewer at the site
and nothing else) reaches only the wallboard pages of its scope and what they load (``DISPLAY_PATHS``): every
other page, the API and every action are refused. Revoking it ends the open wallboards within the session
watch's interval (``plantlink.auth.live``). Created, revoked and used (exchanged) are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from plantlink.auth.records import check_roles
from plantlink.errors import InvalidRequest
from plantlink.identity import Principal
from plantlink.store.floor_tables import display_tokens

if TYPE_CHECKING:
    from plantlink.auth.service import AuthService

US = 1_000_000
DISPLAY_PREFIX = "pld_"
#: the query parameter that carries a display token, and the cookie it is exchanged for
DISPLAY_PARAM = "display"
DISPLAY_COOKIE = "plantlink_display"
#: where the HMI serves its wallboards (``plantlink.hmi.mount.DEFAULT_MOUNT`` + ``/wall``)
WALL_PREFIX = "/hmi/wall"
#: the only paths a display principal reaches: the wallboards and what their page loads (scripts, the socket)
DISPLAY_PATHS = (f"{WALL_PREFIX}/", "/hmi/_nicegui/", "/hmi/_nicegui_ws/", "/hmi/favicon.ico")
DEFAULT_DAYS = 366.0


@dataclass(frozen=True)
class DisplayInfo:
    id: str
    name: str
    site: str
    line: str | None
    created_by: str
    created_us: int
    expires_us: int
    revoked_us: int | None
    last_used_us: int | None

    @property
    def scope(self) -> str:
        return self.line or self.site

    def state(self, now_us: int) -> str:
        if self.revoked_us is not None:
            return "revoked"
        return "expired" if self.expires_us <= now_us else "active"


@dataclass(frozen=True)
class NewDisplay:
    info: DisplayInfo
    secret: str = field(repr=False)  # "pld_<id>_<secret>", shown once


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def principal_of(info: DisplayInfo) -> Principal:
    """What a display token stands for: viewer at its site, confined to the wallboards of its scope."""
    return Principal(f"display:{info.name}", {info.site: "viewer"}, kind="display", token_id=info.id,
                     scope=info.scope)


def may_show(principal: Principal, line_path: str) -> bool:
    """Whether a display principal may show the wallboard of ``line_path`` (a line of its scope)."""
    scope = principal.scope or ""
    return principal.kind == "display" and (line_path == scope or line_path.startswith(scope + "/"))


def split(bearer: str) -> tuple[str | None, str | None]:
    if not bearer.startswith(DISPLAY_PREFIX) or len(bearer) > 200:
        return None, None
    token_id, sep, secret = bearer[len(DISPLAY_PREFIX):].partition("_")
    if not sep or len(token_id) != 16 or not secret or any(ch not in "0123456789abcdef" for ch in token_id):
        return None, None
    return token_id, secret


def _info(row: Any) -> DisplayInfo:
    return DisplayInfo(row.id, row.name, row.site, row.line, row.created_by, int(row.created_us),
                       int(row.expires_us), row.revoked_us, row.last_used_us)


class DisplayTokens:
    """The display tokens of an ``AuthService`` (its store, clock, audit and change listeners)."""

    def __init__(self, service: AuthService):
        self.service = service

    def _now_us(self) -> int:
        return int(self.service.clock() * US)

    @staticmethod
    def _scope(site: str, line: str | None) -> tuple[str, str | None]:
        """A site name and, optionally, a line path of that site (the plant model is the caller's to check:
        the users page does)."""
        site = site.strip()
        check_roles({site: "viewer"})
        if site == "*":
            raise InvalidRequest("a display token is for one site (not '*')")
        line = (line or "").strip().strip("/") or None
        if line is not None and not line.startswith(site + "/"):
            raise InvalidRequest(f"{line!r} is not a line of site {site!r}")
        return site, line

    def create(self, name: str, site: str, line: str | None, actor: str, days: float | None = None) -> NewDisplay:
        days = DEFAULT_DAYS if days is None else days
        if not 0 < days <= self.service.settings.token_max_days:
            raise InvalidRequest(f"display token lifetime must be > 0 and <= "
                                 f"{self.service.settings.token_max_days:g} days")
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRequest("a display token needs a name of 1-100 characters (which screen it is)")
        site, line = self._scope(site, line)
        token_id, secret, now = secrets.token_hex(8), secrets.token_urlsafe(32), self._now_us()
        with self.service.engine.begin() as c:
            c.execute(display_tokens.insert().values(
                id=token_id, name=name, site=site, line=line, secret_hash=sha256_hex(secret), created_by=actor,
                created_us=now, expires_us=now + int(days * 86400 * US)))
        info = self.get(token_id)
        self.service.audit.record("auth.display_created", actor, site, info.scope,
                                  {"token_id": token_id, "name": name, "days": days})
        return NewDisplay(info, f"{DISPLAY_PREFIX}{token_id}_{secret}")

    def get(self, token_id: str) -> DisplayInfo:
        with self.service.engine.connect() as c:
            row = c.execute(sa.select(display_tokens).where(display_tokens.c.id == token_id)).first()
        if row is None:
            raise InvalidRequest(f"no display token with id {token_id!r}")
        return _info(row)

    def list(self) -> list[DisplayInfo]:
        q = sa.select(display_tokens).order_by(display_tokens.c.created_us, display_tokens.c.id)
        with self.service.engine.connect() as c:
            return [_info(r) for r in c.execute(q)]

    def revoke(self, token_id: str, actor: str) -> DisplayInfo:
        info = self.get(token_id)
        if info.revoked_us is None:
            with self.service.engine.begin() as c:
                c.execute(display_tokens.update().where(display_tokens.c.id == token_id).values(
                    revoked_us=self._now_us()))
        self.service._changed("display", token_id, "display_revoked")
        self.service.audit.record("auth.display_revoked", actor, info.site, info.scope, {"token_id": token_id})
        return self.get(token_id)

    def principal(self, bearer: str) -> Principal | None:
        """The display principal of ``pld_<id>_<secret>``, or None (garbled, unknown, wrong, expired, revoked)."""
        token_id, secret = split(bearer)
        if token_id is None or secret is None:
            return None
        with self.service.engine.connect() as c:
            row = c.execute(sa.select(display_tokens).where(display_tokens.c.id == token_id)).first()
        if row is None or not hmac.compare_digest(str(row.secret_hash), sha256_hex(secret)):
            return None
        info, now = _info(row), self._now_us()
        if info.state(now) != "active":
            return None
        if info.last_used_us is None or now - info.last_used_us >= int(self.service.settings.touch_interval_s * US):
            with self.service.engine.begin() as c:
                c.execute(display_tokens.update().where(display_tokens.c.id == token_id).values(last_used_us=now))
        return principal_of(info)

    def exchange(self, bearer: str, client: str | None) -> Principal | None:
        """``principal`` for a token presented in a wallboard URL; a good one is audited as used."""
        found = self.principal(bearer)
        if found is not None:
            self.service.audit.record("auth.display_used", found.name, next(iter(found.roles)), found.scope,
                                      {"token_id": found.token_id, "client": client})
        return found
