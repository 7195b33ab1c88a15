"""Browser tests of the HMI: one real server per module (NiceGUI serves one app at a time), a real
headless Chromium driven by Playwright. Without /usr/bin/chromium the tests skip, except under CI=true
where they fail."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from plantlink.identity import Principal
from plantlink.model import Plant
from plantlink.sim import Simulator
from tests.conftest import IN_CI
from tests.hmi.harness import CHROMIUM, CHROMIUM_ARGS, PRINCIPAL_HEADER, ROOT, HmiServer, chromium_available
from tests.hmi.seed import Seeded, seed
from tests.waiting import wait_until

ARTIFACTS = ROOT / "test-artifacts" / "hmi"
LINE = "windsor/stamping/press-line-1"
PRESS = f"{LINE}/press1"
CONVEYOR = f"{LINE}/conveyor1"

PRINCIPALS = {
    "default": Principal("olga", {"windsor": "operator", "detroit": "viewer"}),
    "windsor-viewer": Principal("victor", {"windsor": "viewer"}),
    "admin": Principal("ada", {"*": "admin"}),
    "engineer": Principal("erin", {"windsor": "engineer"}),
    "engineer2": Principal("emil", {"windsor": "engineer"}),
}


SEEDED = Seeded()


def seed_history(plant: Plant, data_dir: Path, sim: Simulator) -> None:
    seed(plant, data_dir, sim, SEEDED)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    srv = HmiServer(tmp_path_factory.mktemp("hmi-data"), PRINCIPALS, prepare=seed_history).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # module scope: while open, Playwright's sync API keeps an event loop on the main thread, which async tests
    # of later modules must not find
    if not chromium_available():
        if IN_CI:
            pytest.fail(f"CI=true and {CHROMIUM} is missing: install the Debian package chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Visit:
    """A browser context for one test: every request URL is kept (to prove nothing leaves loopback)."""

    def __init__(self, browser: Any, server: HmiServer, as_: str | None = None,
                 viewport: tuple[int, int] = (1280, 900)):
        headers = {PRINCIPAL_HEADER: as_} if as_ else {}
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           extra_http_headers=headers)
        self.context.set_default_timeout(30_000)  # generous for a loaded machine: waits end on the condition
        self.page = self.context.new_page()
        self.urls: list[str] = []
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.server = server

    def goto(self, path: str) -> Any:
        """Open ``path`` and wait until a NiceGUI page's socket is connected: a click before that is lost (on a
        loaded machine the socket can take seconds), as it would be for a person clicking that early."""
        answer = self.page.goto(self.server.url + path)
        self.page.wait_for_function("() => !window.socket || window.socket.connected")
        return answer

    def foreign(self) -> list[str]:
        return [u for u in self.urls if not u.startswith("data:") and urlparse(u).hostname not in ("127.0.0.1",)]


def attributes(target: Any, *names: str) -> list[str | None]:
    """Several attributes of one element read in one step: a panel that redraws (a trend following now) may set
    new ones between two separate reads, and a start from one draw with an end from the next is neither."""
    got: list[str | None] = target.evaluate("(e, names) => names.map(n => e.getAttribute(n))", list(names))
    return got


def span_us(target: Any) -> tuple[int, int]:
    """An element's ``data-start-us`` and ``data-end-us`` (0 when missing), read together."""
    s, e = attributes(target, "data-start-us", "data-end-us")
    return int(s or 0), int(e or 0)


def click_opens(v: Visit, button: str, shows: str) -> None:
    """Click ``button`` until ``shows`` is visible: an alarm's row is drawn again when that alarm changes (the
    forced vibration changes it within seconds), and a click on a row being replaced is lost (as a person's
    would be: they click again)."""
    def opened() -> bool:
        if not v.page.locator(shows).is_visible():
            v.page.click(button)
            with contextlib.suppress(PlaywrightTimeout):
                v.page.wait_for_selector(shows, timeout=2000)
        return v.page.locator(shows).is_visible()

    wait_until(opened, 30.0, f"{shows} shown after a click on {button}")


@pytest.fixture
def visit(browser: Any, server: HmiServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    made: list[Visit] = []

    def open_(as_: str | None = None, viewport: tuple[int, int] = (1280, 900)) -> Visit:
        v = Visit(browser, server, as_, viewport)
        made.append(v)
        return v

    yield open_
    # a screenshot of each page of a failed test, for the person reading the failure (a full-page PNG of every
    # passing test cost about 0.3 s of CPU each, a minute over the suite)
    failed = any(getattr(request.node, f"rep_{when}", None) is not None and getattr(request.node, f"rep_{when}").failed
                 for when in ("setup", "call"))
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    for i, v in enumerate(made):
        try:
            if failed:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                v.page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
        finally:
            v.context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test (``rep_setup``, ``rep_call``) for the fixtures' teardown to read."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
