"""Login, logout and "who am I" routes, the /login page, and ``install_auth(app, service)``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from plantlink.api.errors import ApiError, envelope
from plantlink.api.security import current_principal
from plantlink.auth.account import FORM_PATHS, account_router
from plantlink.auth.middleware import LOGIN_API, LOGIN_PATH, AuthMiddleware, same_origin
from plantlink.auth.page import CSP, NOTICES, login_page, safe_next
from plantlink.auth.pool import LoginShedding
from plantlink.auth.records import NewSession
from plantlink.auth.service import AuthService
from plantlink.auth.watch import SessionWatch
from plantlink.errors import AuthFailed, Busy, LockedOut
from plantlink.identity import Principal

MAX_FORM_BYTES = 8192


class LoginBody(BaseModel):
    user: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _secure(service: AuthService, request: Request) -> bool:
    forced = service.settings.secure_cookies
    return forced if forced is not None else request.url.scheme == "https"


def set_session_cookies(response: Response, service: AuthService, request: Request, session: NewSession) -> None:
    """Session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS. CSRF cookie: readable by the page's script
    (to echo in the X-CSRF-Token header), same flags otherwise."""
    s, secure = service.settings, _secure(service, request)
    age = int(s.session_ttl_s)
    response.set_cookie(s.cookie_name, session.secret, max_age=age, path="/", secure=secure, httponly=True,
                        samesite="strict")
    response.set_cookie(s.csrf_cookie_name, session.csrf, max_age=age, path="/", secure=secure, httponly=False,
                        samesite="strict")


def clear_session_cookies(response: Response, service: AuthService, request: Request) -> None:
    secure = _secure(service, request)
    for name, http_only in ((service.settings.cookie_name, True), (service.settings.csrf_cookie_name, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")


def _me(principal: Principal, service: AuthService, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {"user": principal.name, "kind": principal.kind, "roles": dict(principal.roles)}
    if principal.kind == "token":
        body["token_id"] = principal.token_id
    secret = getattr(request.state, "session_secret", None)
    if principal.kind == "session" and secret:
        body["csrf_token"] = service.csrf_token(secret)
    return body


async def _login(service: AuthService, request: Request, user: str, password: str) -> NewSession:
    if not same_origin(request):
        raise ApiError(403, "cross_origin", "log in from this server's own login page")
    # on the login pool, never on the default thread pool that authenticated requests use
    return await service.login_pool.run(service.login, user, password, _client(request))


async def _refused(service: AuthService, exc: LockedOut | Busy) -> Response:
    """429 (this user and address must wait) or 503 (the password checks are full), with Retry-After, after
    ``refusal_delay_s`` (a client retrying at once gets few answers a second)."""
    await asyncio.sleep(service.settings.refusal_delay_s)
    resp = envelope(429, "locked", str(exc)) if isinstance(exc, LockedOut) else envelope(503, "busy", str(exc))
    resp.headers["retry-after"] = str(exc.retry_after)
    return resp


def auth_router(service: AuthService) -> APIRouter:
    router = APIRouter()

    @router.post(LOGIN_API, tags=["auth"], summary="Log in: sets the session cookie, returns the CSRF token")
    async def login(body: LoginBody, request: Request) -> Response:
        try:
            session = await _login(service, request, body.user, body.password)
        except (LockedOut, Busy) as exc:
            return await _refused(service, exc)
        resp = JSONResponse({"user": session.user.name, "roles": dict(session.user.roles),
                             "csrf_token": session.csrf, "expires_us": session.expires_us})
        set_session_cookies(resp, service, request, session)
        return resp

    @router.post("/api/v1/auth/logout", tags=["auth"], summary="End this browser session")
    async def logout(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        secret = getattr(request.state, "session_secret", None)
        if secret:
            await run_in_threadpool(service.logout, secret, principal.name)
        resp = JSONResponse({"ok": True})
        clear_session_cookies(resp, service, request)
        return resp

    @router.get("/api/v1/auth/me", tags=["auth"], summary="Who is calling, with which roles per site")
    async def me(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
        return _me(principal, service, request)

    @router.get(LOGIN_PATH, include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        notice = next((k for k in NOTICES if k in request.query_params), None)
        return _html(login_page(next_path=request.query_params.get("next", "/"), notice=notice))

    @router.post(LOGIN_PATH, include_in_schema=False)
    async def form_login(request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace")).items()}
        user, password, nxt = form.get("user", ""), form.get("password", ""), safe_next(form.get("next"))
        try:
            if not user or not password:
                raise AuthFailed()
            session = await _login(service, request, user[:100], password[:1024])
        except (AuthFailed, LockedOut, Busy, ApiError) as exc:
            page = _html(login_page(str(exc), user, nxt), exc.status)
            if isinstance(exc, LockedOut | Busy):
                await asyncio.sleep(service.settings.refusal_delay_s)
                page.headers["retry-after"] = str(exc.retry_after)
            return page
        resp = RedirectResponse(nxt, status_code=303)
        set_session_cookies(resp, service, request, session)
        return resp

    return router


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers={"content-security-policy": CSP, "x-frame-options": "DENY",
                                               "cache-control": "no-store", "referrer-policy": "same-origin"})


def install_auth(app: FastAPI, service: AuthService, public: Iterable[tuple[str, str]] = (),
                 csrf_exempt: Iterable[str] = ()) -> None:
    """Authenticate every request of ``app`` (deny by default), add the auth routes and the /login page, and
    expose the service as ``app.state.auth``, the audit log as ``app.state.audit`` and the watch over open live
    connections (HMI pages, API streams: ``plantlink.auth.watch``) as ``app.state.sessions``. ``public`` adds
    (METHOD, path) pairs reachable without credentials; ``csrf_exempt`` path prefixes take a same-origin
    ``Origin`` header instead of the CSRF header for cookie-authenticated writes."""
    # the account forms carry their CSRF token in a field, checked by their routes (plantlink.auth.account)
    exempt = (*csrf_exempt, *FORM_PATHS)
    app.add_middleware(AuthMiddleware, service=service, public=tuple(public), csrf_exempt=exempt)
    # outermost: a login flood is shed before authentication, routing and body parsing
    app.add_middleware(LoginShedding, pool=service.login_pool, api_paths=(LOGIN_API,), form_paths=(LOGIN_PATH,),
                       delay_s=service.settings.refusal_delay_s)
    app.include_router(auth_router(service))
    app.include_router(account_router(service))
    app.state.auth = service
    app.state.audit = service.audit
    app.state.sessions = SessionWatch(service)
