"""The system page, reached by its link: a viewer of one site sees the devices of that site only, each with its
state, and the services; a problem in a device's health (a refused tag) appears as a reason without a reload,
and goes when it goes. The demo plant on its simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plantlink.identity import Principal
from tests.hmi.harness import HmiServer
from tests.waiting import wait_until

PRINCIPALS = {
    "windsor": Principal("wendy", {"windsor": "viewer"}),
    "everywhere": Principal("eve", {"*": "viewer"}),
}
WINDSOR = {"sim-modbus", "sim-opcua", "sim-logix"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HmiServer]:
    srv = HmiServer(tmp_path_factory.mktemp("hmi-system"), PRINCIPALS).start()
    try:
        yield srv
    finally:
        srv.stop()


def rows(v: Any) -> dict[str, str]:
    return dict(v.page.eval_on_selector_all(
        '[data-testid="system-device"]', "els => els.map(e => [e.dataset.device, e.dataset.state])"))


def test_a_viewer_reaches_the_devices_of_their_site_by_the_link(visit: Any) -> None:
    v = visit("windsor")
    v.goto("/hmi/")
    v.page.click('[data-testid="nav-system"]')
    v.page.wait_for_selector('[data-testid="system-device"]')
    assert v.page.url.endswith("/hmi/system")
    def connected() -> dict[str, str] | None:
        r = rows(v)
        return r if r and set(r.values()) == {"connected"} else None

    found = wait_until(connected, 60, "every device connected")
    assert set(found) == WINDSOR  # not the Detroit S7: that site is not theirs
    assert v.page.locator('[data-testid="system-part"][data-part="Historian"]').count() == 1
    v2 = visit("everywhere")
    v2.goto("/hmi/system")
    wait_until(lambda: set(rows(v2)) == WINDSOR | {"sim-s7-detroit"}, 60, "both sites' devices")


def test_a_refused_tag_shows_as_a_reason_and_goes_without_a_reload(visit: Any, server: HmiServer) -> None:
    v = visit("everywhere")
    v.goto("/hmi/system")
    v.page.wait_for_selector('[data-testid="system-device"]')
    assert server.runtime is not None
    health = server.runtime.connectors["sim-opcua"].health  # (OPC UA: not a polling connector, keeps its issues)
    problem = "tag ns=2;s=Nope: the server does not know this node"
    health.issues = [problem]
    try:
        reason = f"device sim-opcua: {problem}"
        wait_until(lambda: reason in v.page.locator('[data-testid="system-reason"]').all_inner_texts(), 30,
                   "the reason shown")
        assert v.page.get_attribute('[data-testid="system-status"]', "data-status") == "degraded"
        cell = v.page.locator('[data-testid="system-device"][data-device="sim-opcua"] '
                              '[data-testid="system-device-problem"]')
        assert problem in cell.all_inner_texts()
    finally:
        health.issues = []
    wait_until(lambda: reason not in v.page.locator('[data-testid="system-reason"]').all_inner_texts(), 30,
               "the reason gone")
