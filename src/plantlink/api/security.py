"""The security seam of the API: who is calling (a ``Principal``) and what they may do.

Authentication (sessions, API tokens) happens in middleware that sets ``request.state.principal`` (see
``plantlink.auth``). Every route depends on ``current_principal`` (401 when nobody is authenticated) and
checks the site it acts on with ``authorize`` (403 when the role is too low or the site is not theirs).
Deny by default: a route that forgets to ask has no principal and fails closed.
"""

from __future__ import annotations

from fastapi import Request, WebSocket

from plantlink.errors import AccessDenied, Unauthenticated
from plantlink.identity import Principal, Role


def _principal_of(conn: Request | WebSocket) -> Principal:
    principal = getattr(conn.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthenticated("log in or send an API token (Authorization: Bearer ...)")
    return principal


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    return _principal_of(request)


async def ws_principal(websocket: WebSocket) -> Principal:
    """The caller of a WebSocket, or 401 (the socket is closed with code 4401)."""
    return _principal_of(websocket)


def authorize(principal: Principal, site: str, role: Role = "viewer") -> None:
    """403 unless ``principal`` has at least ``role`` at ``site``."""
    if not principal.can(site, role):
        raise AccessDenied(f"{role} rights at site {site!r} are needed", site)
