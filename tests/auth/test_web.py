"""The middleware on a real FastAPI app: deny by default, login/logout/me, cookie flags, CSRF, bearer tokens,
the login page, and WebSockets through a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import Depends, FastAPI, WebSocket

from plantlink.api import errors
from plantlink.api.security import authorize, current_principal, ws_principal
from plantlink.auth import AuthService, install_auth
from plantlink.identity import Principal
from tests.auth.conftest import FAST

PW = "a-good-password-1"


def make_app(service: AuthService) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/secret")
    async def secret(p: Principal = Depends(current_principal)) -> dict[str, Any]:
        return {"who": p.name}

    @app.post("/api/v1/sites/{site}/write")
    async def write(site: str, p: Principal = Depends(current_principal)) -> dict[str, Any]:
        authorize(p, site, "operator")
        return {"written_by": p.name}

    @app.post("/_hmi/poll")
    async def poll(p: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"polled_by": p.name}

    @app.get("/hmi")
    async def page() -> dict[str, str]:  # forgets to ask for a principal: the middleware still guards it
        return {"page": "hmi"}

    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        p = await ws_principal(ws)
        await ws.accept()
        await ws.send_json({"hello": p.name})
        await ws.close()

    install_auth(app, service, csrf_exempt=["/_hmi/"])
    return app


@pytest.fixture
def users(service: AuthService) -> AuthService:
    service.create_user("alice", {"windsor": "operator"}, "t", PW)
    service.create_user("vic", {"windsor": "viewer"}, "t", PW)
    return service


@pytest.fixture
async def client(users: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(users), client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://plant.test") as c:
        yield c


async def _login(c: httpx.AsyncClient, user: str = "alice", pw: str = PW) -> str:
    r = await c.post("/api/v1/auth/login", json={"user": user, "password": pw})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


async def test_everything_is_denied_without_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/login")).status_code == 200
    for method, path in (("GET", "/api/v1/secret"), ("POST", "/api/v1/sites/windsor/write"), ("GET", "/hmi"),
                         ("GET", "/nope"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/api/v1/auth/me"),
                         ("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/login"), ("DELETE", "/healthz")):
        r = await client.request(method, path)
        assert r.status_code == 401, (method, path)
        assert r.json() == {"error": {"status": 401, "code": "unauthenticated", "message": r.json()["error"][
            "message"]}}
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await client.get("/hmi?x=1&y=2", headers={"accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fhmi%3Fx%3D1%26y%3D2"
    r = await client.get("/api/v1/secret", headers={"accept": "text/html"})
    assert r.status_code == 401  # the API never redirects


async def test_login_cookie_flags_me_and_logout(client: httpx.AsyncClient, users: AuthService) -> None:
    r = await client.post("/api/v1/auth/login", json={"user": "alice", "password": PW})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == "alice" and body["roles"] == {"windsor": "operator"} and PW not in r.text
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    session = cookies[FAST.cookie_name]
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    assert "secure" not in session  # plain HTTP here
    assert "httponly" not in cookies[FAST.csrf_cookie_name] and "samesite=strict" in cookies[FAST.csrf_cookie_name]
    assert body["csrf_token"] in cookies[FAST.csrf_cookie_name].replace(f"{FAST.csrf_cookie_name}=", "")
    assert body["csrf_token"] not in session
    me = (await client.get("/api/v1/auth/me")).json()
    assert me == {"user": "alice", "kind": "session", "roles": {"windsor": "operator"},
                  "csrf_token": body["csrf_token"]}
    assert (await client.get("/hmi")).json() == {"page": "hmi"}
    r = await client.post("/api/v1/auth/logout", headers={"x-csrf-token": body["csrf_token"]})
    assert r.status_code == 200
    assert (await client.get("/api/v1/secret")).status_code == 401
    kinds = [rec.kind for rec in users.audit.query(actor="alice")]
    assert kinds == ["auth.login", "auth.logout"]


async def test_secure_cookie_over_https(users: AuthService) -> None:
    transport = httpx.ASGITransport(app=make_app(users))
    async with httpx.AsyncClient(transport=transport, base_url="https://plant.test") as c:
        r = await c.post("/api/v1/auth/login", json={"user": "alice", "password": PW})
    assert all("secure" in v.lower() for v in r.headers.get_list("set-cookie"))


async def test_bad_logins_lockout_and_no_secrets_in_responses(client: httpx.AsyncClient) -> None:
    bodies = []
    for user in ("alice", "nobody"):
        r = await client.post("/api/v1/auth/login", json={"user": user, "password": "wrong-password"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
        bodies.append(r.json())
    assert bodies[0] == bodies[1]
    assert "wrong-password" not in str(bodies)
    for _ in range(FAST.pair_free_failures - 1):
        await client.post("/api/v1/auth/login", json={"user": "alice", "password": "wrong-password"})
    r = await client.post("/api/v1/auth/login", json={"user": "alice", "password": PW})
    assert r.status_code == 429 and int(r.headers["retry-after"]) == int(FAST.pair_backoff_s)
    assert r.json()["error"]["code"] == "locked"
    r = await client.post("/api/v1/auth/login", json={"user": "alice"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"


async def test_csrf_required_for_cookie_writes(client: httpx.AsyncClient) -> None:
    csrf = await _login(client)
    url = "/api/v1/sites/windsor/write"
    for headers in ({}, {"x-csrf-token": ""}, {"x-csrf-token": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")},
                    {"x-csrf-token": "x" * 64}):
        r = await client.post(url, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", headers
    r = await client.post(url, headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and r.json() == {"written_by": "alice"}
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await client.request(method, url)).status_code == 403
        assert (await client.request(method, url, headers={"x-csrf-token": csrf})).status_code == 405
    assert (await client.post("/api/v1/sites/detroit/write", headers={"x-csrf-token": csrf})).status_code == 403
    # another session's token does not fit this session
    other = httpx.AsyncClient(transport=client._transport, base_url="http://plant.test")
    async with other:
        other_csrf = await _login(other, "vic")
    assert (await client.post(url, headers={"x-csrf-token": other_csrf})).status_code == 403


async def test_csrf_exempt_prefix_needs_same_origin(client: httpx.AsyncClient) -> None:
    await _login(client)
    assert (await client.post("/_hmi/poll")).status_code == 403  # no Origin: refused
    assert (await client.post("/_hmi/poll", headers={"origin": "https://evil.example"})).status_code == 403
    r = await client.post("/_hmi/poll", headers={"origin": "http://plant.test"})
    assert r.status_code == 200 and r.json() == {"polled_by": "alice"}
    client.cookies.clear()
    assert (await client.post("/_hmi/poll", headers={"origin": "http://plant.test"})).status_code == 401


async def test_bearer_tokens_are_exempt_from_csrf_and_checked(client: httpx.AsyncClient,
                                                              users: AuthService) -> None:
    token = users.create_token("alice", "script", None, "t")
    auth = {"authorization": f"Bearer {token.secret}"}
    r = await client.post("/api/v1/sites/windsor/write", headers=auth)
    assert r.status_code == 200 and r.json() == {"written_by": "alice"}
    me = (await client.get("/api/v1/auth/me", headers=auth)).json()
    assert me == {"user": "alice", "kind": "token", "roles": {"windsor": "operator"}, "token_id": token.info.id}
    viewer = users.create_token("alice", "read only", {"windsor": "viewer"}, "t")
    r = await client.post("/api/v1/sites/windsor/write", headers={"authorization": f"Bearer {viewer.secret}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for bad in (f"Bearer {token.secret}x", "Bearer ", "Bearer garbage", f"Basic {token.secret}"):
        r = await client.get("/api/v1/secret", headers={"authorization": bad})
        assert r.status_code == 401, bad
    users.revoke_token(token.info.id, "t")
    r = await client.get("/api/v1/secret", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


async def test_login_page_and_form(client: httpx.AsyncClient) -> None:
    page = await client.get("/login?next=/hmi")
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'value="/hmi"' in page.text and "http" not in page.text.split("<body>")[1].replace('"', "")
    form = {"user": "alice", "password": "wrong-password", "next": "/hmi"}
    r = await client.post("/login", data=form)
    assert r.status_code == 401 and "wrong user name or password" in r.text and "wrong-password" not in r.text
    r = await client.post("/login", data={**form, "password": PW})
    assert r.status_code == 303 and r.headers["location"] == "/hmi"
    assert (await client.get("/hmi")).status_code == 200
    for evil in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"):
        r = await client.post("/login", data={**form, "password": PW, "next": evil})
        assert r.headers["location"] == "/", evil
    r = await client.post("/login", data={**form, "password": PW}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    r = await client.post("/api/v1/auth/login", json={"user": "alice", "password": PW},
                          headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"


@contextlib.asynccontextmanager
async def serve(app: FastAPI, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def test_websocket_needs_credentials_on_a_real_server(users: AuthService,
                                                            free_port: Callable[[], int]) -> None:
    port = free_port()
    token = users.create_token("alice", "ws", None, "t")
    async with serve(make_app(users), port):
        url = f"ws://127.0.0.1:{port}/ws/live"
        with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
            async with websockets.connect(url):
                pass
        assert exc.value.response.status_code == 403  # closed before accept (code 4401)
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token.secret}"}) as ws:
            assert await ws.recv() == '{"hello":"alice"}'
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _login(http)
            cookie = f"{FAST.cookie_name}={http.cookies[FAST.cookie_name]}"
        async with websockets.connect(url, additional_headers={"Cookie": cookie},
                                      origin=f"http://127.0.0.1:{port}") as ws:  # type: ignore[arg-type]
            assert await ws.recv() == '{"hello":"alice"}'
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(url, additional_headers={"Cookie": cookie},
                                          origin="https://evil.example"):  # type: ignore[arg-type]
                pass
