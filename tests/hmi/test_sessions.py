"""An open HMI page acts only while the session that opened it is good, and only through its own socket.

A real server with the real authentication (``HmiServer(auth=True)``); pages are fetched and their socket.io
socket driven frame by frame (``tests.hmi.nicesocket``), as an attacker would: the ``event`` frames of the
setpoint input, Stage and Confirm, sent after the session ended, with another user's page id, or through a
socket that tried to handshake into another user's page. "Another process" is a second ``AuthService`` on the
same store (the server hears nothing of its changes; ``tests/security/test_live_sessions.py`` uses the real CLI).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from plantlink.audit import AuditLog
from plantlink.audit.log import AuditRecord
from plantlink.auth import AuthService
from tests.hmi.conftest import PRESS
from tests.hmi.harness import FAST_AUTH, HmiServer
from tests.hmi.nicesocket import HmiPage, NiceSocket
from tests.waiting import wait_until

PAGE = f"/hmi/machine/{PRESS}"
SPM = f"{PRESS}/spm_setpoint"  # operator role, 4..25, step <= 4
_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    srv = HmiServer(tmp_path_factory.mktemp("hmi-auth"), {}, auth=True).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def other(server: HmiServer) -> Iterator[AuthService]:
    """Another service on the server's store: its changes reach the server only through the store."""
    assert server.runtime is not None and server.runtime.store is not None
    yield AuthService(server.runtime.store.engine, server.data_dir, FAST_AUTH)


@pytest.fixture
def slow_watch(server: HmiServer) -> Iterator[None]:
    """The periodic re-check off: only the check before each event can find a change made elsewhere."""
    assert server.app is not None
    watch = getattr(server.app.state, "sessions", None)
    if watch is None:  # (the code before the watch existed)
        yield
        return
    before, watch.interval = watch.interval, 3600.0
    try:
        yield
    finally:
        watch.interval = before
        watch.poke()  # out of its long wait


@dataclass
class User:
    name: str
    cookie: str
    csrf: str


def new_user(server: HmiServer, roles: dict[str, str]) -> User:
    assert server.auth is not None
    name, password = f"hmi-{next(_names)}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    server.auth.create_user(name, roles, actor="test", password=password)
    r = httpx.post(server.url + "/api/v1/auth/login", json={"user": name, "password": password}, timeout=20)
    assert r.status_code == 200, r.text
    return User(name, r.cookies["plantlink_session"], r.json()["csrf_token"])


def logout(server: HmiServer, u: User) -> None:
    r = httpx.post(server.url + "/api/v1/auth/logout", cookies={"plantlink_session": u.cookie},
                   headers={"x-csrf-token": u.csrf}, timeout=20)
    assert r.status_code == 200, r.text


def audit(server: HmiServer) -> AuditLog:
    assert server.runtime is not None and server.runtime.audit is not None
    return server.runtime.audit


def last_id(server: HmiServer) -> int:
    return max((r.id for r in audit(server).query(newest_first=True, limit=1)), default=0)


def records(server: HmiServer, after: int, actor: str | None = None, kind: str | None = None) -> list[AuditRecord]:
    return [r for r in audit(server).query(actor=actor, kind=kind) if r.id > after]


def spm(server: HmiServer) -> float:
    assert server.simulator is not None
    return float(server.simulator.snapshot()[SPM])  # type: ignore[arg-type]


def values(server: HmiServer) -> tuple[float, float]:
    """Two new values within the limits and the step of the current one, both unlike it."""
    cur = spm(server)
    sign = 1 if cur + 2 <= 25 else -1
    return round(cur + sign * 1, 1), round(cur + sign * 2, 1)


def open_page(server: HmiServer, u: User, path: str = PAGE) -> tuple[HmiPage, NiceSocket]:
    page = HmiPage.open(server.url, u.cookie, path)
    sock = page.connect()
    assert sock.wait_connected(), sock.refused
    return page, sock


def stage(page: HmiPage, sock: NiceSocket, value: float, wait: float) -> str | None:
    """The input and Stage frames; the new Confirm button when the server offered one within ``wait`` s."""
    before = set(page.find_all(SPM, testid="confirm"))
    sent = sock.event(page.find(SPM, testid="sp-new"), "update:modelValue", value) and \
        sock.event(page.find(SPM, testid="stage"), "click")
    if not sent:
        return None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not sock.closed.is_set():
        new = set(page.find_all(SPM, testid="confirm")) - before
        if new:
            return new.pop()
        time.sleep(0.05)
    return None


def attack(page: HmiPage, sock: NiceSocket, value: float) -> None:
    """Input, Stage and (when the server offers it) Confirm, as frames on the page's socket."""
    confirm = stage(page, sock, value, wait=3.0)
    if confirm is not None:
        sock.event(confirm, "click")


def proves_frames_act(server: HmiServer, page: HmiPage, sock: NiceSocket, u: User, value: float) -> None:
    """Before the session ends the same frames do act: a staged check with Confirm, audited."""
    mark = last_id(server)
    assert stage(page, sock, value, wait=15.0) is not None, "no Confirm offered for a good value"
    assert any(r.details.get("value") == value for r in records(server, mark, u.name, "control.stage"))


@dataclass
class Acting:
    """An operator's machine page whose frames were just shown to act; two values; the audit id before."""

    user: User
    page: HmiPage
    sock: NiceSocket
    v1: float
    v2: float
    mark: int = 0


def acting_page(server: HmiServer) -> Acting:
    u = new_user(server, {"windsor": "operator"})
    page, sock = open_page(server, u)
    a = Acting(u, page, sock, *values(server))
    proves_frames_act(server, page, sock, u, a.v1)
    a.mark = last_id(server)
    return a


def assert_nothing_acted(server: HmiServer, u: User, after: int, written: set[float]) -> None:
    acted = records(server, after, u.name, "control.")
    assert not acted, [(r.kind, r.details) for r in acted]
    assert spm(server) not in written


def test_logout_closes_the_page_and_its_frames_act_no_more(server: HmiServer) -> None:
    a = acting_page(server)
    u, page, sock, v1, v2, mark = a.user, a.page, a.sock, a.v1, a.v2, a.mark
    t0 = time.monotonic()
    logout(server, u)
    attack(page, sock, v2)
    assert sock.closed.wait(10), "the page's socket is still open after logout"
    latency = time.monotonic() - t0
    assert sock.told_to_reload(), "the browser was not told to reload (to the login page)"
    assert_nothing_acted(server, u, mark, {v1, v2})
    assert [r.kind for r in records(server, mark, u.name, "auth.")] == ["auth.logout"]
    print(f"HMI socket closed {latency * 1000:.0f} ms after the logout request was sent")


def test_disabled_elsewhere_the_next_event_is_refused(server: HmiServer, other: AuthService,
                                                      slow_watch: None) -> None:
    a = acting_page(server)
    u, page, sock, v1, v2, mark = a.user, a.page, a.sock, a.v1, a.v2, a.mark
    other.set_disabled(u.name, True, actor="test")
    attack(page, sock, v2)
    refused = wait_until(lambda: records(server, mark, u.name, "hmi.frame_refused"), 10,
                         "the event after the disable is refused and audited")
    assert refused[0].details["reason"] == "user_disabled" and refused[0].details["frame"] == "event"
    assert refused[0].site == "windsor" and refused[0].target == PAGE
    assert "sp-new" in refused[0].details["element"]  # the first frame after the disable: the input
    assert sock.closed.wait(10) and sock.told_to_reload()
    assert_nothing_acted(server, u, mark, {v1, v2})


def test_roles_lowered_elsewhere_the_next_event_is_refused(server: HmiServer, other: AuthService,
                                                           slow_watch: None) -> None:
    a = acting_page(server)
    u, page, sock, v1, v2, mark = a.user, a.page, a.sock, a.v1, a.v2, a.mark
    other.set_roles(u.name, {"windsor": "viewer"}, actor="test")
    attack(page, sock, v2)
    refused = wait_until(lambda: records(server, mark, u.name, "hmi.frame_refused"), 10, "refused and audited")
    assert refused[0].details["reason"] == "roles_changed"
    assert sock.closed.wait(10) and sock.told_to_reload()  # the browser reloads: the page with the new roles
    assert_nothing_acted(server, u, mark, {v1, v2})
    # the page rebuilt for the same session shows no Stage any more
    again = HmiPage.open(server.url, u.cookie, PAGE)
    assert again.find_all(SPM, testid="stage") == []


def test_roles_lowered_elsewhere_closes_an_idle_page(server: HmiServer, other: AuthService) -> None:
    """No event needed: the periodic re-check finds the change and closes the page."""
    u = new_user(server, {"windsor": "operator", "detroit": "viewer"})
    _, sock = open_page(server, u)
    other.set_roles(u.name, {"detroit": "viewer"}, actor="test")
    assert sock.closed.wait(10), "the page of a user who lost the site stays open"
    assert sock.told_to_reload()
    r = httpx.get(server.url + PAGE, cookies={"plantlink_session": u.cookie}, timeout=20)
    assert r.status_code == 403  # the reload: no access to the site any more


def test_disabled_in_this_process_closes_at_once(server: HmiServer) -> None:
    assert server.auth is not None
    u = new_user(server, {"windsor": "operator"})
    _, sock = open_page(server, u)
    t0 = time.monotonic()
    server.auth.set_disabled(u.name, True, actor="test")
    assert sock.closed.wait(10)
    assert time.monotonic() - t0 < 5.0


def test_another_users_socket_cannot_act_on_a_page(server: HmiServer) -> None:
    """A Detroit operator's socket sends the frames of a Windsor operator's page, with that page's client id."""
    victim = new_user(server, {"windsor": "operator"})
    thief = new_user(server, {"detroit": "operator"})
    page, sock = open_page(server, victim)
    _, stolen = open_page(server, thief, "/hmi/")
    v1, v2 = values(server)
    mark = last_id(server)
    sent = stolen.event(page.find(SPM, testid="sp-new"), "update:modelValue", v2, page=page) and \
        stolen.event(page.find(SPM, testid="stage"), "click", page=page)
    assert sent
    refused = wait_until(lambda: records(server, mark, thief.name, "hmi.frame_refused"), 10, "refused, audited")
    assert refused[0].details == {"frame": "event", "reason": "foreign_client", "owner": victim.name,
                                  "element": refused[0].details["element"]}
    assert stolen.closed.wait(10), "the foreign socket stays open"
    assert_nothing_acted(server, victim, mark, {v2})
    assert_nothing_acted(server, thief, mark, {v2})
    assert page.find_all(SPM, testid="confirm") == []
    proves_frames_act(server, page, sock, victim, v1)  # the victim's page works on


def test_a_socket_cannot_handshake_into_another_users_page(server: HmiServer) -> None:
    victim = new_user(server, {"windsor": "operator"})
    thief = new_user(server, {"windsor": "operator"})
    page = HmiPage.open(server.url, victim.cookie, PAGE)  # built, its socket not yet connected
    mark = last_id(server)
    taken = page.connect(cookie=thief.cookie)
    assert not taken.wait_connected(), "a socket of another user took over the page"
    refused = records(server, mark, thief.name, "hmi.frame_refused")
    assert [(r.details["frame"], r.details["reason"], r.details["owner"]) for r in refused] == [
        ("handshake", "foreign_client", victim.name)]
    mine = page.connect()  # the owner's socket still gets in
    assert mine.wait_connected()
    v1, _ = values(server)
    proves_frames_act(server, page, mine, victim, v1)


def test_a_browser_on_a_page_goes_to_login_after_logout(server: HmiServer, browser: Any) -> None:
    assert server.auth is not None
    name, password = f"hmi-b{next(_names)}", secrets.token_urlsafe(12)
    server.auth.create_user(name, {"windsor": "operator"}, actor="test", password=password)
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto(server.url + "/login?next=" + PAGE)
        page.fill("#user", name)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_selector(f'[data-setpoint="{SPM}"] [data-testid="stage"]')
        page.wait_for_function("() => window.socket && window.socket.connected")
        csrf = next(c["value"] for c in context.cookies() if c["name"] == "plantlink_csrf")
        assert page.request.post(server.url + "/api/v1/auth/logout", headers={"x-csrf-token": csrf}).ok
        page.wait_for_url("**/login?next=*", timeout=30000)
        assert page.locator("#password").count() == 1
    finally:
        context.close()


def test_a_page_whose_session_ends_before_its_socket_connects_goes_to_login(server: HmiServer, browser: Any) -> None:
    """The page is built, then the session ends before its socket gets through (held here by the browser's
    routing): the auth middleware refuses the socket, not the guard, and the page still lands on the login page."""
    assert server.auth is not None
    name, password = f"hmi-r{next(_names)}", secrets.token_urlsafe(12)
    server.auth.create_user(name, {"windsor": "operator"}, actor="test", password=password)
    context = browser.new_context(base_url=server.url)
    held = {"socket": False}
    try:
        page = context.new_page()
        page.goto(server.url + "/login?next=/hmi/")
        page.fill("#user", name)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_function("() => window.socket && window.socket.connected")
        held["socket"] = True
        context.route("**/_nicegui_ws/**", lambda r: r.abort() if held["socket"] else r.continue_())
        context.route_web_socket(re.compile(r".*/_nicegui_ws/.*"),
                                 lambda ws: ws.close() if held["socket"] else ws.connect_to_server())
        page.goto(server.url + PAGE)
        page.wait_for_selector(f'[data-setpoint="{SPM}"]')  # built with the session still good
        assert not page.evaluate("() => window.socket.connected")
        csrf = next(c["value"] for c in context.cookies() if c["name"] == "plantlink_csrf")
        assert page.request.post(server.url + "/api/v1/auth/logout", headers={"x-csrf-token": csrf}).ok
        held["socket"] = False
        page.wait_for_url("**/login?next=*", timeout=30000)
        assert page.locator("#password").count() == 1
    finally:
        context.close()
