"""Open connections live no longer than their credentials, on the served application (a child process): the
API stream after logout, token revocation, ``plantlink users disable`` run as its own process, and lowered
roles; an HMI page's socket after ``plantlink users disable``. Users, tokens and role changes are made by an
``AuthService`` in this (another) process on the server's store, as the CLI does.

The stream must close within a second of a logout, revoke or disable; the tests allow 10 s on a loaded machine
and print what they saw (``bench/sessions.py`` measures it)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from plantlink.auth import AuthService
from tests.hmi.nicesocket import HmiPage
from tests.security.conftest import D_MACHINE, W_LINE, Served, Users

W_PRESS = f"{W_LINE}/press1"
W_SPM = f"{W_PRESS}/spm_setpoint"
BOUND_S = 10.0  # generous: the promise is 1 s


@pytest.fixture(scope="module")
def auth(served: Served) -> Iterator[AuthService]:
    svc = AuthService.open(served.data_dir)
    yield svc
    svc.close()


def new_user(served: Served, auth: AuthService, roles: dict[str, str]) -> tuple[str, str]:
    name, password = f"live-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    auth.create_user(name, roles, actor="test", password=password)
    return name, password


def login(served: Served, name: str, password: str) -> tuple[str, str]:
    with served.client() as c:
        r = c.post("/api/v1/auth/login", json={"user": name, "password": password})
        assert r.status_code == 200, r.text
        return r.cookies["plantlink_session"], r.json()["csrf_token"]


def cli(served: Served, *args: str) -> None:
    """``plantlink users ...`` as its own process on the server's data directory."""
    r = subprocess.run([sys.executable, "-m", "plantlink.cli", "users", *args, "--data-dir", str(served.data_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def open_stream(served: Served, headers: dict[str, str], machines: tuple[str, ...] = (W_PRESS,)) -> ClientConnection:
    ws = connect(served.url.replace("http://", "ws://") + "/api/v1/stream", additional_headers=headers,
                 open_timeout=20).__enter__()
    ws.send(json.dumps({"subscribe": {"machines": list(machines), "states": True}}))
    first = json.loads(ws.recv(timeout=20))
    assert first["type"] == "subscribed", first
    return ws


def values_of(msg: dict[str, Any]) -> list[str]:
    return [v["tag"] for v in msg.get("values", [])]


def next_values(ws: ClientConnection, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg: dict[str, Any] = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg["type"] == "values" and not msg.get("snapshot"):
            return msg


def closed(ws: ClientConnection, since: float) -> tuple[int, str, float, int]:
    """Read until the server closes: (code, reason, seconds since ``since``, values messages read meanwhile)."""
    n = 0
    try:
        while True:
            msg = json.loads(ws.recv(timeout=max(0.1, since + BOUND_S - time.monotonic())))
            n += msg["type"] == "values"
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame"
        return exc.rcvd.code, exc.rcvd.reason, time.monotonic() - since, n
    except TimeoutError:
        raise AssertionError(f"the stream is still open {BOUND_S} s later ({n} values messages)") from None


def test_stream_closes_on_logout(served: Served, auth: AuthService) -> None:
    cookie, csrf = login(served, *new_user(served, auth, {"windsor": "viewer"}))
    ws = open_stream(served, {"cookie": f"plantlink_session={cookie}"})
    assert values_of(next_values(ws))  # it delivers
    t0 = time.monotonic()
    with served.client(cookies={"plantlink_session": cookie}) as c:
        assert c.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf}).status_code == 200
    code, reason, took, _ = closed(ws, t0)
    assert (code, reason.split(":")[0]) == (4401, "logged_out"), reason
    print(f"stream closed {took * 1000:.0f} ms after the logout request was sent")


def test_stream_closes_when_its_token_is_revoked_elsewhere(served: Served, auth: AuthService) -> None:
    name, _ = new_user(served, auth, {"windsor": "viewer"})
    token = auth.create_token(name, "live", None, actor="test")
    ws = open_stream(served, {"authorization": f"Bearer {token.secret}"})
    assert values_of(next_values(ws))
    t0 = time.monotonic()
    auth.revoke_token(token.info.id, actor="test")
    code, reason, took, _ = closed(ws, t0)
    assert (code, reason.split(":")[0]) == (4401, "token_revoked"), reason
    print(f"stream closed {took * 1000:.0f} ms after the revoke in another process")


def test_stream_closes_when_the_cli_disables_the_user(served: Served, auth: AuthService) -> None:
    name, password = new_user(served, auth, {"windsor": "viewer"})
    cookie, _ = login(served, name, password)
    by_cookie = open_stream(served, {"cookie": f"plantlink_session={cookie}"})
    token = auth.create_token(name, "live", None, actor="test")
    by_token = open_stream(served, {"authorization": f"Bearer {token.secret}"})
    cli(served, "disable", name)
    t0 = time.monotonic()
    for ws in (by_cookie, by_token):
        code, reason, took, _ = closed(ws, t0)
        assert (code, reason.split(":")[0]) == (4401, "user_disabled"), reason
        print(f"stream closed {took * 1000:.0f} ms after `plantlink users disable` exited")


def test_stream_follows_lowered_roles(served: Served, auth: AuthService) -> None:
    name, password = new_user(served, auth, {"windsor": "viewer", "detroit": "viewer"})
    cookie, _ = login(served, name, password)
    ws = open_stream(served, {"cookie": f"plantlink_session={cookie}"}, (W_PRESS, D_MACHINE))
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while not ({t.split("/")[0] for t in seen} >= {"windsor", "detroit"}) and time.monotonic() < deadline:
        seen.update(values_of(next_values(ws)))
    assert {t.split("/")[0] for t in seen} == {"windsor", "detroit"}  # both sites' values come
    auth.set_roles(name, {"windsor": "viewer"}, actor="test")
    deadline = time.monotonic() + BOUND_S
    while (msg := json.loads(ws.recv(timeout=BOUND_S)))["type"] != "access_changed":
        assert time.monotonic() < deadline, "no access_changed after the roles were lowered"
    assert msg["roles"] == {"windsor": "viewer"} and msg["removed"]["machines"] == [D_MACHINE]
    assert msg["subscriptions"]["machines"] == [W_PRESS]
    after = [values_of(next_values(ws)) for _ in range(3)]
    assert all(t.startswith("windsor/") for tags in after for t in tags), after
    ws.send(json.dumps({"subscribe": {"machines": [D_MACHINE]}}))  # and it cannot come back
    while (reply := json.loads(ws.recv(timeout=20)))["type"] == "values":
        assert all(t.startswith("windsor/") for t in values_of(reply))
    assert reply["type"] == "error" and reply["code"] == "forbidden"
    t0 = time.monotonic()
    auth.set_roles(name, {}, actor="test")  # no site left: the stream closes
    code, reason, _, _ = closed(ws, t0)
    assert (code, reason.split(":")[0]) == (4403, "no_site"), reason


def test_cli_disable_closes_an_open_hmi_page(served: Served, auth: AuthService, users: Users) -> None:
    name, password = new_user(served, auth, {"windsor": "operator"})
    cookie, _ = login(served, name, password)
    page = HmiPage.open(served.url, cookie, f"/hmi/machine/{W_PRESS}")
    sock = page.connect()
    assert sock.wait_connected()
    admin = users.login("admin")
    mark = admin.get("/api/v1/audit", params={"limit": 1}).json()["items"][0]["id"]
    cli(served, "disable", name)
    t0 = time.monotonic()
    sock.event(page.find(W_SPM, testid="sp-new"), "update:modelValue", 12)  # the frames of a write
    sock.event(page.find(W_SPM, testid="stage"), "click")
    assert sock.closed.wait(BOUND_S), "the page's socket stays open after the user was disabled"
    print(f"HMI socket closed {(time.monotonic() - t0) * 1000:.0f} ms after `plantlink users disable` exited")
    # closed by the session's end (not by chance): the server says so (the reload is checked in tests/hmi)
    closing = [ln for ln in served.log_text().splitlines() if f"of {name} closed" in ln]
    assert closing and "user_disabled" in closing[0], (sock.story(), closing)
    items = admin.get("/api/v1/audit", params={"actor": name, "limit": 100}).json()["items"]
    acted = [(i["kind"], i["details"]) for i in items if i["id"] > mark and i["kind"].startswith("control.")]
    assert not acted, acted
    with httpx.Client(base_url=served.url, cookies={"plantlink_session": cookie}) as c:
        assert c.get(f"/hmi/machine/{W_PRESS}", headers={"accept": "text/html"}).status_code == 303  # to /login
