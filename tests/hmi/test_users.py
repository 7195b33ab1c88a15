"""The users and tokens page (issue 10, item 2): a real server with real authentication and the demo users; an
admin manages an account in the browser and the new user lives with the consequences in another browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from plantlink.auth import DEMO_USERS
from tests.hmi.harness import HmiServer, demo_users_server
from tests.waiting import wait_until

USERS = "/hmi/users"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    with demo_users_server(tmp_path_factory.mktemp("hmi-users")) as srv:
        yield srv


class Person:
    """A browser context logged in through the login page."""

    def __init__(self, browser: Any, server: HmiServer, user: str, password: str):
        self.server = server
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.goto(f"{server.url}/login?next=/hmi/")
        self.page.fill("#user", user)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        assert urlparse(self.page.url).path.startswith("/hmi"), (user, self.page.url)
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_function("() => window.socket && window.socket.connected")

    def open(self, path: str) -> Any:
        answer = self.page.goto(self.server.url + path)
        self.page.wait_for_function("() => !window.socket || window.socket.connected")
        return answer

    def menu(self) -> list[str]:
        self.page.get_by_test_id("user").click()
        menu = self.page.get_by_test_id("user-menu")
        menu.wait_for()
        return [t.strip().splitlines()[-1] for t in menu.locator("a").all_inner_texts()]

    def close(self) -> None:
        self.context.close()


def _secret(page: Any) -> str:
    secret = page.get_by_test_id("secret")
    secret.wait_for()
    text = str(secret.inner_text()).strip()
    page.get_by_test_id("secret-done").click()
    secret.wait_for(state="detached")
    return text


def _user_row(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid="users-table"] [data-user="{name}"]')


def test_an_admin_manages_a_user_and_a_token(browser: Any, server: HmiServer) -> None:
    assert server.auth is not None
    admin = Person(browser, server, "admin", DEMO_USERS["admin"][1])
    newbie: Person | None = None
    try:
        assert "Users" in admin.menu()
        admin.page.get_by_test_id("user-menu").get_by_text("Users", exact=True).click()
        admin.page.wait_for_url(lambda u: urlparse(u).path == USERS)
        admin.ready()
        page = admin.page
        # a refusal is shown, not a crash
        page.get_by_test_id("new-name").fill("newbie")
        page.get_by_test_id("new-roles").fill("windsor=boss")
        page.get_by_test_id("create-user").click()
        wait_until(lambda: "invalid role" in page.get_by_test_id("users-error").inner_text(), what="refusal shown")
        page.get_by_test_id("new-roles").fill("windsor=operator")
        page.get_by_test_id("create-user").click()
        password = _secret(page)
        _user_row(page, "newbie").wait_for()
        assert "windsor=operator" in _user_row(page, "newbie").inner_text()

        newbie = Person(browser, server, "newbie", password)  # the shown password works
        assert "Users" not in newbie.menu()
        newbie.open("/hmi/machine/windsor/stamping/press-line-1/press1")

        # a token made on the page, shown once, works until revoked
        detail = page.get_by_test_id("user-detail")
        detail.get_by_test_id("token-name").fill("ci")
        detail.get_by_test_id("token-roles").fill("windsor=viewer")
        detail.get_by_test_id("create-token").click()
        token = _secret(page)
        bearer = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/api/v1/auth/me", headers=bearer).status_code == 200
            detail.locator('[data-state="active"]').get_by_test_id("revoke").click()
            detail.locator('[data-state="revoked"]').wait_for()
            assert c.get("/api/v1/auth/me", headers=bearer).status_code == 401

        # disable: the new user's open page closes (to the login page), and logging in is refused
        detail.get_by_test_id("disable").click()
        _user_row(page, "newbie").and_(page.locator('[data-disabled="true"]')).wait_for()
        newbie.page.wait_for_url(lambda u: urlparse(u).path == "/login", timeout=60_000)
        newbie.close()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            r = c.post("/api/v1/auth/login", json={"user": "newbie", "password": password})
            assert r.status_code == 401, r.text
        # enable: the password works again
        page.get_by_test_id("user-detail").get_by_test_id("enable").click()
        _user_row(page, "newbie").and_(page.locator('[data-disabled="false"]')).wait_for()
        newbie = Person(browser, server, "newbie", password)
        assert not admin.errors, admin.errors
        kinds = {r.kind for r in server.auth.audit.query(actor="admin")}
        assert {"auth.user_created", "auth.token_created", "auth.token_revoked", "auth.user_disabled",
                "auth.user_enabled"} <= kinds
    finally:
        admin.close()
        if newbie is not None:
            newbie.close()


def test_a_non_admin_gets_403_and_no_users_link(browser: Any, server: HmiServer) -> None:
    for name in ("operator", "detroit-operator"):
        person = Person(browser, server, name, DEMO_USERS[name][1])
        try:
            assert "Users" not in person.menu()
            assert person.open(USERS).status == 403
        finally:
            person.close()


def test_roles_reset_password_and_unlock_from_the_page(browser: Any, server: HmiServer) -> None:
    assert server.auth is not None
    server.auth.create_user("shifty", {"windsor": "operator"}, actor="test", password="first-password-1")
    with httpx.Client(base_url=server.url, timeout=30) as c:  # failed logins: a back-off for shifty
        for _ in range(3):
            c.post("/api/v1/auth/login", json={"user": "shifty", "password": "wrong-password-0"})
    admin = Person(browser, server, "admin", DEMO_USERS["admin"][1])
    shifty: Person | None = None
    try:
        page = admin.page
        admin.open(USERS)
        row = _user_row(page, "shifty")
        assert "3 failure(s)" in row.inner_text()
        row.get_by_test_id("manage").click()
        detail = page.locator('[data-testid="user-detail"][data-user="shifty"]')
        detail.get_by_test_id("unlock").click()
        wait_until(lambda: "failure" not in _user_row(page, "shifty").inner_text(), what="back-off cleared")

        shifty = person = Person(browser, server, "shifty", "first-password-1")
        detail.get_by_test_id("edit-roles").fill("windsor=viewer, detroit=viewer")
        detail.get_by_test_id("save-roles").click()
        wait_until(lambda: "detroit=viewer" in _user_row(page, "shifty").inner_text(), what="roles shown")
        assert server.auth.user("shifty").roles == {"windsor": "viewer", "detroit": "viewer"}
        # shifty's open overview reloads with the new roles: detroit shows
        wait_until(lambda: "detroit" in person.page.inner_text("body").lower(), what="overview with detroit")
        shifty.ready()

        page.locator('[data-testid="user-detail"][data-user="shifty"]').get_by_test_id("reset-password").click()
        password = _secret(page)
        shifty.page.wait_for_url(lambda u: urlparse(u).path == "/login", timeout=60_000)  # sessions ended
        shifty.close()
        shifty = Person(browser, server, "shifty", password)

        _user_row(page, "admin").get_by_test_id("manage").click()
        page.locator('[data-testid="user-detail"][data-user="admin"]').get_by_test_id("disable").click()
        wait_until(lambda: "cannot disable yourself" in page.get_by_test_id("users-error").inner_text(),
                   what="self-disable refused")
        assert not server.auth.user("admin").disabled
        kinds = {r.kind for r in server.auth.audit.query(actor="admin")}
        assert {"auth.unlocked", "auth.roles_changed", "auth.password_reset"} <= kinds
        assert not admin.errors, admin.errors
    finally:
        admin.close()
        if shifty is not None:
            shifty.close()
