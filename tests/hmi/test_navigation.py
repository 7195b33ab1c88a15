"""Every link and control of the HMI works, for every demo user (issue 10, item 1).

A real server with the real authentication and the demo users; a real headless Chromium logs in through the
login page as each user, as a person would, then follows every link it finds (breadth first, from the
overview) and uses the range picker of the line, machine and OEE-over-time pages. Any answer of 400 or more,
any NiceGUI error page and any console error or uncaught page error fails the test, naming the page and the
link that led there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlparse

import pytest
from scripts import hmi_css

from plantlink.auth import DEMO_USERS
from plantlink.services.periods import PRESETS
from tests.hmi.conftest import seed_history
from tests.hmi.harness import HmiServer, demo_users_server

MAX_PAGES = 60  # the demo plant has fewer pages than this for any user
SKIP = ("/api/",)  # downloads and API answers (the audit export link), not pages


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    with demo_users_server(tmp_path_factory.mktemp("hmi-nav"), prepare=seed_history) as srv:
        yield srv


class Crawl:
    """One logged-in browser context that records every problem it sees."""

    def __init__(self, browser: Any, server: HmiServer, user: str):
        self.server, self.user = server, user
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.classes: set[str] = set()  # every class of every page opened
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
        self.classes.update(self.page.evaluate(CLASSES_JS))
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


@pytest.mark.timeout(600)  # the admin's crawl opens every page of the plant (about 40): minutes on a loaded machine
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
        kinds = {p.split("?")[0].split("/")[2] for p in seen if len(p.split("?")[0].split("/")) > 2}
        assert {"line", "machine", "alarms", "oee"} <= kinds, f"{user} found no link to some pages: {sorted(seen)}"
        if DEMO_USERS[user][0] == {"*": "admin"}:
            assert "audit" in kinds, f"the admin found no link to the audit trail: {sorted(seen)}"
        unstyled = unstyled_classes(crawl)
        assert not unstyled, f"{user}'s pages use Tailwind classes the HMI's stylesheet lacks: {unstyled} (make css)"
    finally:
        crawl.context.close()


CLASSES_JS = "() => [...new Set([...document.querySelectorAll('[class]')].flatMap(e => [...e.classList]))]"


def unstyled_classes(crawl: Crawl) -> list[str]:
    """The classes on the pages that Tailwind styles but the compiled stylesheet was not built for (a class
    made at run time from pieces, or a source outside ``src/plantlink/hmi``)."""
    missing = sorted(crawl.classes - set(hmi_css.candidates()))
    return hmi_css.utilities(hmi_css.generate(crawl.context.new_page(), missing)) if missing else []


def test_the_range_picker_opens_each_preset_and_range(browser: Any, server: HmiServer) -> None:
    """The line page's range picker: every preset, compare on, a custom from/to; the machine and OEE-over-time
    pages' pickers: one preset each (their ranges: tests/hmi/test_range_picker.py)."""
    crawl = Crawl(browser, server, "operator")
    try:
        crawl.login()
        line = "/hmi/line/windsor/stamping/press-line-1"
        assert crawl.open(line, "test")

        def pick(key: str, label: str, path: str) -> None:
            crawl.page.get_by_test_id("period").get_by_role("button", name=label, exact=True).click()
            settled(lambda u: f"period={key}" in u, path)

        def settled(url: Any, path: str) -> None:
            crawl.page.wait_for_url(url)
            crawl.where = crawl.page.url
            assert urlparse(crawl.page.url).path == path, crawl.page.url
            crawl.page.wait_for_function("() => !window.socket || window.socket.connected")
            crawl.page.get_by_test_id("range").wait_for()
            assert "Sorry, this page does not exist" not in crawl.page.inner_text("body")

        offered = list(PRESETS.items())
        for key, label in [*offered[1:], offered[0]]:  # the first one last: a change
            pick(key, label, line)
        crawl.page.get_by_test_id("compare-switch").click()
        settled(lambda u: "compare=1" in u, line)
        crawl.page.get_by_test_id("apply").click()  # the range shown, as from/to
        settled(lambda u: "from=" in u and "compare=1" in u, line)
        machine = f"{line.replace('/line/', '/machine/')}/press1"
        assert crawl.open(machine, "test")
        pick("24h", PRESETS["24h"], machine)
        assert crawl.open("/hmi/oee?scope=windsor%2Fstamping%2Fpress-line-1", "test")
        pick("yesterday", PRESETS["yesterday"], "/hmi/oee")
        assert not crawl.problems, "\n".join(crawl.problems)
    finally:
        crawl.context.close()


def _menu(crawl: Crawl, item: str) -> None:
    crawl.page.get_by_test_id("user").click()
    crawl.page.get_by_test_id("user-menu").get_by_text(item, exact=True).click()


def test_log_out_from_the_user_menu_closes_the_other_open_pages(browser: Any, server: HmiServer) -> None:
    crawl = Crawl(browser, server, "operator")
    try:
        crawl.login()
        other = crawl.context.new_page()  # a machine page left open in another tab
        other.goto(server.url + "/hmi/machine/windsor/stamping/press-line-1/press1")
        other.wait_for_function("() => window.socket && window.socket.connected")
        assert crawl.open("/hmi/", "test")
        _menu(crawl, "Log out")
        crawl.page.wait_for_url(lambda u: urlparse(u).path == "/logout")
        crawl.page.get_by_role("button", name="Log out").click()
        crawl.page.wait_for_url(lambda u: urlparse(u).path == "/login")
        other.wait_for_url(lambda u: urlparse(u).path == "/login", timeout=60_000)  # told to reload: login
        crawl.page.goto(server.url + "/hmi/")
        assert urlparse(crawl.page.url).path == "/login"  # the session is over
        assert not crawl.problems, "\n".join(crawl.problems)
    finally:
        crawl.context.close()


def test_change_password_from_the_user_menu(browser: Any, server: HmiServer) -> None:
    assert server.auth is not None
    old, new = "first-password-1", "second-password-2"
    server.auth.create_user("pw-changer", {"windsor": "viewer"}, actor="test", password=old)
    crawl = Crawl(browser, server, "pw-changer")
    try:
        page = crawl.page
        page.goto(server.url + "/login?next=/hmi/")
        page.fill("#user", "pw-changer")
        page.fill("#password", old)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert urlparse(page.url).path.startswith("/hmi"), (page.url, page.inner_text("body")[:300])
        page.wait_for_function("() => window.socket && window.socket.connected")
        _menu(crawl, "Change password")
        page.wait_for_url(lambda u: urlparse(u).path == "/account/password")

        def submit(current: str, new1: str, new2: str) -> None:
            page.fill("#current", current)
            page.fill("#new", new1)
            page.fill("#repeat", new2)
            page.get_by_role("button", name="Change password").click()

        submit("wrong-password-0", new, new)
        assert "The current password is wrong." in page.inner_text("body")
        submit(old, new, new + "x")
        assert "The two new passwords differ." in page.inner_text("body")
        submit(old, new, new)
        page.wait_for_url(lambda u: urlparse(u).path == "/login")
        assert "Your password was changed" in page.inner_text("body")
        for password, works in ((old, False), (new, True)):
            page.fill("#user", "pw-changer")
            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            assert urlparse(page.url).path.startswith("/hmi") == works, (password, page.url)
        kinds = [r.kind for r in server.auth.audit.query(actor="pw-changer")]
        assert "auth.password_changed" in kinds
    finally:
        crawl.context.close()


def test_account_forms_refuse_a_post_without_the_form_token(server: HmiServer) -> None:
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/api/v1/auth/login", json={"user": "viewer", "password": DEMO_USERS["viewer"][1]})
        assert r.status_code == 200
        origin = {"origin": server.url}
        assert c.post("/logout", data={"csrf": "forged"}, headers=origin).status_code == 403
        form = {"csrf": "forged", "current": DEMO_USERS["viewer"][1], "new": "x" * 12, "repeat": "x" * 12}
        assert c.post("/account/password", data=form, headers=origin).status_code == 403
        assert c.post("/logout", data={"csrf": r.json()["csrf_token"]}).status_code == 403  # no Origin: refused
        assert c.get("/api/v1/auth/me").status_code == 200  # still logged in, password unchanged
        r = c.post("/logout", data={"csrf": r.json()["csrf_token"]}, headers=origin)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fhmi%2F"
        assert c.get("/api/v1/auth/me").status_code == 401
