"""The wallboard shows the line's kWh per good part over the shift (a line with energy tags: the demo's press
line), the energy API's figure for the same range."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from plantlink.hmi.wall import KPI_PERIOD_S, per_part_text
from tests.hmi.conftest import LINE
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer
from tests.waiting import wait_until


def test_the_wallboard_shows_the_lines_kwh_per_good_part(visit: Any, server: HmiServer) -> None:
    v = visit("windsor-viewer", viewport=(1920, 1080))
    v.goto(f"/hmi/wall/{LINE}")
    label = v.page.get_by_test_id("wall-energy")
    label.wait_for()
    # the simulator's power starts with the server: until two readings are stored the line has used 0 kWh (the
    # wall shows that, and asks again every KPI_PERIOD_S)
    wait_until(lambda: float(label.get_attribute("data-kwh-per-part") or 0) > 0, 3 * KPI_PERIOD_S,
               "the wall's energy figure above zero")
    start, end = int(label.get_attribute("data-start-us") or 0), int(label.get_attribute("data-end-us") or 0)
    shown = label.get_attribute("data-kwh-per-part")
    with httpx.Client(base_url=server.url, headers={PRINCIPAL_HEADER: "windsor-viewer"}, timeout=60) as api:
        want = api.get("/api/v1/energy", params={"scope": LINE, "start": start // 1000,
                                                 "end": -(-end // 1000)}).json()
    assert want["kwh_per_good_part"] is not None, want  # the simulator's press makes parts and uses power
    # the same figure, give or take the live samples of the range's last second that reached the historian after
    # the wall asked (the simulator's power started with the server: a few seconds of it, a large share)
    assert shown and float(shown) == pytest.approx(want["kwh_per_good_part"], rel=0.25), (shown, want)
    assert label.inner_text() == f"{per_part_text(float(shown))} per good part"
