"""Every link and control of the HMI works, for every demo user (issue 10, item 1).

A real server with the real authentication and the demo users; a real headless Chromium logs in through the
login page as each user, as a person would, then follows every link it finds (breadth first, from the
overview) and uses the line page's period selector. Any answer of 400 or more, any NiceGUI error page and
any console error or uncaught page error fails the test, naming the page and the link that led there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlparse

import pytest

from plantlink.auth import DEMO_USERS, bootstrap_demo_users
from plantlink.services.periods import PERIODS
from tests.hmi.conftest import seed_history
from tests.hmi.harness import HmiServer

MAX_PAGES = 60  # the demo plant has fewer pages than this for any user
SKIP = ("/api/",)  # downloads and API answers (the audit export link), not pages


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    srv = HmiServer(tmp_path_factory.mktemp("hmi-nav"), {}, auth=True, prepare=seed_history).start()
    try:
        assert srv.auth is not None
        bootstrap_demo_users(srv.auth)
        yield srv
    finally:
        srv.stop()


class Crawl:
    """One logged-in browser context that records every problem it sees."""

    def __init__(self, browser: Any, server: HmiServer, user: str):
        self.server, self.user = server, user
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.where = "login"
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"{self.where}: console error {m.text!r}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"{self.where}: page error {e}"))

    def login(self) -> None:
        _, password = DEMO_USERS[self.user]
        self.page.goto(self.server.url + "/hmi/")  # not logged in: sent to the login page
        assert urlparse(self.page.url).path == "/login", self.page.url
        self.page.fill("#user", self.user)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda u: urlparse(u).path.startswith("/hmi"))

    def open(self, path: str, via: str) -> bool:
        """Open ``path`` (found on ``via``); False, with the problem recorded, when it is not a working page."""
        self.where = f"{path} (linked from {via})"
        answer = self.page.goto(self.server.url + path)
        if answer is None or answer.status >= 400:
            self.problems.append(f"{self.where}: HTTP {answer.status if answer else 'no answer'}")
            return False
        self.page.wait_for_function("() => !window.socket || window.socket.connected")
        body = self.page.inner_text("body")
        if "Sorry, this page does not exist" in body or "Internal Server Error" in body:
            self.problems.append(f"{self.where}: error page")
            return False
        return True

    def links(self) -> list[str]:
        hrefs = self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        out = []
        for h in hrefs:
            u = urlparse(urljoin(self.page.url, h))
            if u.hostname != "127.0.0.1" or not u.path.startswith("/hmi") or u.path.startswith(SKIP):
                continue
            out.append(u.path + (f"?{u.query}" if u.query else ""))
        return out


@pytest.mark.parametrize("user", sorted(DEMO_USERS))
def test_every_link_of_every_page_works_for_each_demo_user(browser: Any, server: HmiServer, user: str) -> None:
    crawl = Crawl(browser, server, user)
    try:
        crawl.login()
        seen, queue = {"/hmi/"}, deque([("/hmi/", "login")])
        opened = 0
        while queue and opened < MAX_PAGES:
            path, via = queue.popleft()
            opened += 1
            if not crawl.open(path, via):
                continue
            for link in crawl.links():
                if link not in seen:
                    seen.add(link)
                    queue.append((link, path))
        assert not crawl.problems, "\n".join(crawl.problems)
        kinds = {p.split("/")[2] for p in seen if len(p.split("/")) > 2}
        assert {"line", "machine", "alarms"} <= kinds, f"{user} found no link to some pages: {sorted(seen)}"
        if DEMO_USERS[user][0] == {"*": "admin"}:
            assert "audit" in kinds, f"the admin found no link to the audit trail: {sorted(seen)}"
    finally:
        crawl.context.close()


def test_the_period_selector_opens_each_period(browser: Any, server: HmiServer) -> None:
    crawl = Crawl(browser, server, "operator")
    try:
        crawl.login()
        line = "/hmi/line/windsor/stamping/press-line-1"
        assert crawl.open(line, "test")
        toggle = crawl.page.get_by_test_id("period")
        for key, label in [*list(PERIODS.items())[1:], next(iter(PERIODS.items()))]:  # today last: a change
            toggle.get_by_role("button", name=label, exact=True).click()
            crawl.page.wait_for_url(lambda u, k=key: f"period={k}" in u)
            crawl.where = crawl.page.url
            assert urlparse(crawl.page.url).path == line, crawl.page.url
            crawl.page.wait_for_function("() => !window.socket || window.socket.connected")
            assert "Sorry, this page does not exist" not in crawl.page.inner_text("body")
        assert not crawl.problems, "\n".join(crawl.problems)
    finally:
        crawl.context.close()
