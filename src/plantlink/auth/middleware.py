"""``AuthMiddleware``: authenticate every HTTP and WebSocket request; deny by default.

Credentials: ``Authorization: Bearer plk_...`` (API tokens, exempt from CSRF) or the session cookie (browser;
state-changing methods need the ``X-CSRF-Token`` header, WebSockets a same-origin ``Origin``). The principal is
put in ``scope["state"]["principal"]`` (= ``request.state.principal`` / ``websocket.state.principal``). A request
without a valid credential reaches only the public paths; anything else gets 401 (JSON envelope) or, for a
browser page (``Accept: text/html``), a redirect to ``/login``; a WebSocket is closed with code 4401. While the
store (users, tokens, sessions) does not answer, a request that needs it is answered 503 ``unavailable`` (a
WebSocket closed with 1013, try again later) instead of a server fault.

Wallboards (``plantlink.auth.display``): ``GET /hmi/wall/...?display=pld_...`` is exchanged for the display
cookie (a redirect drops the token from the address); a display principal reaches only ``DISPLAY_PATHS`` and
writes only on its page's socket (same origin): anything else is 403 ``display_only``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from plantlink.api.errors import envelope
from plantlink.auth.display import DISPLAY_COOKIE, DISPLAY_PARAM, DISPLAY_PATHS, WALL_PREFIX
from plantlink.auth.service import AuthService
from plantlink.identity import Principal
from plantlink.store.opening import unavailable

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOGIN_PATH = "/login"
LOGIN_API = "/api/v1/auth/login"
#: (method, path) reachable without credentials
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", LOGIN_PATH), ("HEAD", LOGIN_PATH), ("POST", LOGIN_PATH), ("POST", LOGIN_API),
    ("GET", "/healthz"), ("HEAD", "/healthz"),
})


@dataclass(frozen=True)
class Outcome:
    principal: Principal | None
    session_secret: str | None = None
    status: int = 401
    code: str = "unauthenticated"
    message: str = "log in or send an API token (Authorization: Bearer ...)"


#: the credentials cannot be checked: the store does not answer
STORE_DOWN = Outcome(None, status=503, code="unavailable",
                     message="the store that keeps users and sessions does not answer: try again shortly")


def bearer_of(conn: HTTPConnection) -> str | None:
    value = conn.headers.get("authorization")
    if value is None:
        return None
    scheme, _, credential = value.partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def same_origin(conn: HTTPConnection) -> bool:
    """No Origin header (not a browser cross-site request), or an Origin whose host:port is this server's."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    host = conn.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc.lower() == host.lower()


class AuthMiddleware:
    def __init__(self, app: ASGIApp, service: AuthService, public: Iterable[tuple[str, str]] = (),
                 csrf_exempt: Iterable[str] = ()):
        self.app = app
        self.service = service
        self.public = PUBLIC | frozenset((m.upper(), p) for m, p in public)
        #: path prefixes whose cookie-authenticated writes need a same-origin Origin instead of the CSRF header
        #: (for frameworks that cannot send the header, e.g. a socket.io long-polling fallback)
        self.csrf_exempt = tuple(csrf_exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        state = scope.setdefault("state", {})
        state.pop("principal", None)
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        if method == "GET" and scope["path"].startswith(WALL_PREFIX + "/") and DISPLAY_PARAM in conn.query_params:
            await (await self._exchange(conn))(scope, receive, send)
            return
        try:
            outcome = await self._authenticate(conn, scope["type"] == "websocket")
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("credentials not checked: the store does not answer (%s)", exc.__class__.__name__)
            outcome = STORE_DOWN
        if outcome.principal is not None and outcome.principal.kind == "display":
            outcome = _confined(conn, outcome, scope["type"] == "websocket")
        if outcome.principal is not None:
            state["principal"] = outcome.principal
            state["session_secret"] = outcome.session_secret
        elif (method, scope["path"]) not in self.public:
            await self._deny(conn, outcome, scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _authenticate(self, conn: HTTPConnection, websocket: bool) -> Outcome:
        bearer = bearer_of(conn)
        if bearer is not None:
            principal = await run_in_threadpool(self.service.token_principal, bearer) if bearer else None
            if principal is None:
                return Outcome(None, code="invalid_token", message="the API token is invalid, expired or revoked")
            return Outcome(principal)
        secret = conn.cookies.get(self.service.settings.cookie_name)
        principal = await run_in_threadpool(self.service.session_principal, secret) if secret else None
        display = conn.cookies.get(DISPLAY_COOKIE)
        if principal is None and display:
            shown = await run_in_threadpool(self.service.displays.principal, display)
            if shown is None:
                return Outcome(None, code="display_ended",
                               message="this display's token was revoked or has expired; ask for a new one")
            return Outcome(shown)
        if not secret:
            return Outcome(None)
        if principal is None:
            return Outcome(None, message="the session has ended; log in again")
        if websocket and not same_origin(conn):
            return Outcome(None, status=403, code="cross_origin", message="cross-origin WebSocket refused")
        writes = not websocket and conn.scope["method"] not in SAFE_METHODS
        if writes and conn.scope["path"].startswith(self.csrf_exempt):
            if conn.headers.get("origin") is None or not same_origin(conn):
                return Outcome(None, status=403, code="csrf", message="cross-origin request refused")
        elif writes:
            header = conn.headers.get(self.service.settings.csrf_header)
            if not self.service.check_csrf(secret, header):
                return Outcome(None, status=403, code="csrf",
                               message=f"missing or wrong CSRF token (send the {self.service.settings.csrf_header} "
                                       "header with the token from login or /api/v1/auth/me)")
        return Outcome(principal, secret)

    async def _exchange(self, conn: HTTPConnection) -> Response:
        """A wallboard URL with ``?display=<token>``: set the display cookie, and redirect to the URL without the
        token (it leaves the address bar and the history); a bad token gets a page saying so."""
        token = conn.query_params.get(DISPLAY_PARAM, "")
        client = conn.client.host if conn.client else None
        principal = await run_in_threadpool(self.service.displays.exchange, token, client)
        if principal is None:
            return HTMLResponse("<!doctype html><title>Display token refused</title><h1>Display token refused</h1>"
                                "<p>This display link is not valid: mistyped, revoked or expired. Ask an "
                                "administrator for a new one.</p>", status_code=401,
                                headers={"cache-control": "no-store"})
        rest = urlencode([(k, v) for k, v in parse_qsl(conn.scope["query_string"].decode("latin-1"))
                          if k != DISPLAY_PARAM])
        response = RedirectResponse(conn.scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
        forced = self.service.settings.secure_cookies
        secure = forced if forced is not None else conn.url.scheme == "https"
        response.set_cookie(DISPLAY_COOKIE, token, max_age=int(self.service.settings.token_max_days * 86400),
                            path="/", secure=secure, httponly=True, samesite="strict")
        response.headers["cache-control"] = "no-store"
        response.headers["referrer-policy"] = "no-referrer"
        return response

    async def _deny(self, conn: HTTPConnection, outcome: Outcome, scope: Scope, receive: Receive,
                    send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            code = {403: 4403, 503: 1013}.get(outcome.status, 4401)
            await send({"type": "websocket.close", "code": code, "reason": outcome.code})
            return
        response: Response
        wants_html = "text/html" in conn.headers.get("accept", "")
        if outcome.status == 401 and wants_html and not scope["path"].startswith("/api/"):
            target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
            response = RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
        else:
            response = envelope(outcome.status, outcome.code, outcome.message)
            if outcome.status == 401:
                response.headers["www-authenticate"] = 'Bearer realm="plantlink"'
        await response(scope, receive, send)


def _confined(conn: HTTPConnection, outcome: Outcome, websocket: bool) -> Outcome:
    """A display principal reaches only the wallboards and what they load (``DISPLAY_PATHS``), reading; its page's
    socket.io writes need this server's own Origin."""
    path = conn.scope["path"]
    refused = Outcome(None, status=403, code="display_only",
                      message="a display token shows only its wallboards: log in as a user for anything else")
    if not path.startswith(DISPLAY_PATHS):
        return refused
    writes = websocket or conn.scope["method"] not in SAFE_METHODS
    socket_ok = path.startswith("/hmi/_nicegui_ws/") and same_origin(conn) and (
        websocket or conn.headers.get("origin") is not None)
    return refused if writes and not socket_ok else outcome
