"""The shop floor in a real browser (issue 10, item 12): a wallboard opened with a display token (no link, no
menu; it rotates between the site's lines; revoking the token ends it), and a handover note an operator writes
on the line page that another user then reads. A real server with real authentication and the demo users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from plantlink.auth import DEMO_USERS
from plantlink.auth.display import DISPLAY_COOKIE
from tests.hmi.harness import HmiServer, demo_users_server
from tests.hmi.test_users import Person, _secret
from tests.waiting import wait_until

LINE = "windsor/stamping/press-line-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    with demo_users_server(tmp_path_factory.mktemp("hmi-floor")) as srv:
        yield srv


def test_wallboard_with_a_display_token_rotates_and_ends_on_revoke(browser: Any, server: HmiServer) -> None:
    """An admin makes a display token for windsor on the users page; the TV opens the address shown; the admin
    revokes it on the same page and the TV's wallboard ends by itself."""
    admin = Person(browser, server, "admin", DEMO_USERS["admin"][1])
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    try:
        admin.open("/hmi/users")
        admin.page.get_by_test_id("display-name").fill("windsor hall")
        admin.page.get_by_test_id("display-scope").fill("windsor")
        admin.page.get_by_test_id("create-display").click()
        address = _secret(admin.page)
        assert address.startswith("/hmi/wall/windsor?display=pld_"), address
        page.goto(f"{server.url}{address}&rotate=5")
        assert urlparse(page.url).query == "rotate=5"  # the token left the address bar
        assert any(c["name"] == DISPLAY_COOKIE for c in ctx.cookies())
        page.wait_for_function("() => window.socket && window.socket.connected")
        wall = page.get_by_test_id("wall")
        lines = page.locator('[data-testid="wall-line"]').evaluate_all("els => els.map(e => e.dataset.line)")
        assert len(lines) > 1 and all(p.startswith("windsor/") for p in lines), lines
        first = wall.get_attribute("data-current")
        assert first in lines
        shown = page.locator(f'[data-testid="wall-line"][data-line="{first}"]')
        assert shown.locator("[data-machine]").count() > 0 and shown.is_visible()
        assert page.locator("a").count() == 0 and page.locator("header, .q-menu, button").count() == 0
        page.wait_for_function(f"() => document.querySelector('[data-testid=wall]').dataset.current !== "
                               f"{first!r}", timeout=30_000)  # rotated (every 5 s)
        assert wall.get_attribute("data-current") == lines[(lines.index(first) + 1) % len(lines)]
        assert page.locator(f'[data-testid="wall-line"][data-line="{first}"]').is_hidden()
        # the same credential anywhere else: refused
        assert page.request.get(f"{server.url}/hmi/line/{LINE}").status == 403
        assert page.request.get(f"{server.url}/api/v1/hierarchy").status == 403
        row = admin.page.locator('[data-testid="displays"] [data-state="active"]')
        assert row.count() == 1
        row.get_by_test_id("revoke-display").click()
        admin.page.locator('[data-testid="displays"] [data-state="revoked"]').wait_for()
        page.wait_for_url(lambda u: urlparse(u).path == "/login", timeout=30_000)  # the wall ended by itself
    finally:
        ctx.close()
        admin.close()


def test_an_operators_handover_note_is_read_by_another_user(browser: Any, server: HmiServer) -> None:
    operator = Person(browser, server, "operator", DEMO_USERS["operator"][1])
    viewer = Person(browser, server, "viewer", DEMO_USERS["viewer"][1])
    try:
        operator.open(f"/hmi/line/{LINE}")
        operator.page.get_by_test_id("handover-text").fill("Press 1 die change at 14:00")
        operator.page.get_by_test_id("handover-add").click()
        operator.page.locator('[data-testid="handover-note"][data-author="operator"]').wait_for()
        viewer.open(f"/hmi/line/{LINE}")
        note = viewer.page.locator('[data-testid="handover-note"][data-author="operator"]')
        note.wait_for()
        assert "Press 1 die change at 14:00" in note.inner_text()
        assert viewer.page.get_by_test_id("handover-add").count() == 0  # viewers read only
        viewer.page.get_by_test_id("wall-link").click()
        wait_until(lambda: urlparse(viewer.page.url).path == f"/hmi/wall/{LINE}", what="the wallboard")
        viewer.page.get_by_test_id("wall-note").wait_for()
        wait_until(lambda: "die change" in viewer.page.get_by_test_id("wall-note").inner_text(), what="note")
    finally:
        operator.close()
        viewer.close()
