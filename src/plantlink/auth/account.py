"""A logged-in person's own account: log out, change the password (the HMI's user menu links here).

Plain HTML forms like the login page (no script, no external asset). The forms post back to the same server;
each carries the session's CSRF token in a hidden field, checked here (the middleware lets these paths through
with a same-origin ``Origin`` header instead of the CSRF header, as it does for the HMI's socket).

* ``GET /logout`` asks, ``POST /logout`` ends this browser session (the same as ``POST /api/v1/auth/logout``),
  clears the cookies and goes to the login page; every open HMI page of that session closes.
* ``GET /account/password`` and ``POST /account/password``: the current password (checked like a login:
  throttled and audited), the new one twice. Every session of the user ends, this one too: log in again.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from plantlink.api.security import current_principal
from plantlink.auth.page import CSP, STYLE
from plantlink.auth.service import AuthService
from plantlink.errors import AuthFailed, Busy, InvalidRequest, LockedOut
from plantlink.identity import Principal

LOGOUT_PATH = "/logout"
PASSWORD_PATH = "/account/password"
#: form posts that carry their CSRF token in a field (see the module docstring)
FORM_PATHS = (LOGOUT_PATH, PASSWORD_PATH)
MAX_FORM_BYTES = 8 * 1024
#: where the next login goes after a logout or a password change
HMI_HOME = "/hmi/"

_FRAME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>plantlink - {title}</title><style>{style}</style></head>
<body><form method="post" action="{action}">
<h1>{title}</h1>{message}{fields}
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">{button}</button>
<p class="back"><a href="{home}">Back to the plant overview</a></p>
</form></body></html>
"""

_PASSWORD_FIELDS = """<p>Signed in as <b>{user}</b>. Every session of yours ends when the password changes: you log
in again with the new one.</p>
<label for="current">Current password</label>
<input id="current" name="current" type="password" autocomplete="current-password" required autofocus>
<label for="new">New password (at least {min_length} characters)</label>
<input id="new" name="new" type="password" autocomplete="new-password" required minlength="{min_length}">
<label for="repeat">New password again</label>
<input id="repeat" name="repeat" type="password" autocomplete="new-password" required minlength="{min_length}">
"""


def _page(title: str, action: str, button: str, csrf: str, fields: str = "", error: str | None = None,
          status: int = 200) -> HTMLResponse:
    message = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    text = _FRAME.format(title=escape(title), style=STYLE, action=action, message=message, fields=fields,
                         csrf=escape(csrf), button=escape(button), home=HMI_HOME)
    return HTMLResponse(text, status, headers={"content-security-policy": CSP, "x-frame-options": "DENY",
                                               "cache-control": "no-store", "referrer-policy": "same-origin"})


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    return {k: v[0] for k, v in parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace")).items()}


def account_router(service: AuthService) -> APIRouter:
    from plantlink.auth.routes import clear_session_cookies

    router = APIRouter(include_in_schema=False)

    def session_of(request: Request) -> tuple[str, str]:
        """The session secret and its CSRF token; an API token has no session (400 page)."""
        secret = getattr(request.state, "session_secret", None)
        if not secret:
            raise InvalidRequest("this is for a browser session; an API token is revoked with "
                                 "plantlink users revoke-token")
        return secret, service.csrf_token(secret)

    def refused(title: str, action: str, button: str, csrf: str, fields: str, error: str) -> HTMLResponse:
        return _page(title, action, button, csrf, fields, error, status=403)

    @router.get(LOGOUT_PATH)
    async def logout_page(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        _, csrf = session_of(request)
        fields = f"<p>Log out <b>{escape(principal.name)}</b> from this browser?</p>"
        return _page("Log out", LOGOUT_PATH, "Log out", csrf, fields)

    @router.post(LOGOUT_PATH)
    async def logout(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        secret, csrf = session_of(request)
        if not service.check_csrf(secret, (await _form(request)).get("csrf")):
            return refused("Log out", LOGOUT_PATH, "Log out", csrf, "", "The form has expired: log out again.")
        await run_in_threadpool(service.logout, secret, principal.name)
        resp = RedirectResponse(f"/login?next={quote(HMI_HOME, safe='')}", status_code=303)
        clear_session_cookies(resp, service, request)
        return resp

    def password_fields(principal: Principal) -> str:
        return _PASSWORD_FIELDS.format(user=escape(principal.name), min_length=service.settings.min_password_length)

    @router.get(PASSWORD_PATH)
    async def password_page(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        _, csrf = session_of(request)
        return _page("Change password", PASSWORD_PATH, "Change password", csrf, password_fields(principal))

    @router.post(PASSWORD_PATH)
    async def change_password(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        secret, csrf = session_of(request)
        form = await _form(request)
        fields = password_fields(principal)

        def again(error: str, status: int = 400) -> HTMLResponse:
            return _page("Change password", PASSWORD_PATH, "Change password", csrf, fields, error, status)

        if not service.check_csrf(secret, form.get("csrf")):
            return again("The form has expired: try again.", 403)
        new, repeat = form.get("new", ""), form.get("repeat", "")
        if new != repeat:
            return again("The two new passwords differ.")
        client = request.client.host if request.client else None
        try:
            await service.login_pool.run(service.change_password, principal.name, form.get("current", "")[:1024],
                                         new, client)
        except AuthFailed:
            return again("The current password is wrong.", 403)
        except (LockedOut, Busy) as exc:
            return again(str(exc), exc.status)
        except InvalidRequest as exc:
            return again(str(exc))
        resp = RedirectResponse(f"/login?changed=1&next={quote(HMI_HOME, safe='')}", status_code=303)
        clear_session_cookies(resp, service, request)
        return resp

    return router
