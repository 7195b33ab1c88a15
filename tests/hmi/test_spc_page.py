"""The SPC page: its access (login, 404 for an unknown tag, 403 for another site's tag) on the real HMI server
with the demo plant, and the ECharts option it draws for a chart with known violations."""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np

from plantlink.analytics import spc
from plantlink.hmi.spc import chart_options
from plantlink.services.spc import SpcChart, Violation
from tests.hmi.conftest import PRESS
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer
from tests.hmi.nicesocket import HmiPage
from tests.waiting import wait_until

TONNAGE = f"{PRESS}/tonnage"
OVEN_TEMP = "windsor/body-paint/body-line-1/oven1/zone1_temperature"
D_TAG = "detroit/machining/cnc-cell-2/cnc2/run_command"


def test_page_access(server: HmiServer) -> None:
    def get(path: str, who: str) -> httpx.Response:
        return httpx.get(server.url + path, headers={PRINCIPAL_HEADER: who}, follow_redirects=False, timeout=30)

    assert get(f"/hmi/spc/{TONNAGE}", "windsor-viewer").status_code == 200
    assert get(f"/hmi/spc/{D_TAG}", "windsor-viewer").status_code == 403
    r = get("/hmi/spc/windsor/no/such/<b>tag", "windsor-viewer")
    assert r.status_code == 404 and "<b>tag" not in r.text
    assert get(f"/hmi/spc/{TONNAGE}", "anonymous").status_code == 303


def test_chart_options_mark_the_violations() -> None:
    x = np.array([10, 12, 11, 13, 12, 14, 13, 15, 14, 30], dtype=np.float64)  # the last is far out
    cs = spc.imr(x)
    ts = 1_780_000_000_000_000 + np.arange(10, dtype=np.int64) * 1_000_000
    v = (Violation("i", "we1", 9, int(ts[9]), 30.0), Violation("mr", "limits", 9, int(ts[9]), 16.0))
    c = SpcChart(1, None, int(ts[0]), int(ts[-1]), "imr", 10, ts, cs, ("we1",), v, None, None)  # type: ignore[arg-type]
    o: dict[str, Any] = chart_options(c, "America/Toronto")
    assert len(o["grid"]) == 2 and [a["name"] for a in o["yAxis"]] == ["i", "mr"]
    names = [s["name"] for s in o["series"]]
    assert names == ["i", "i centre", "i UCL", "i LCL", "i violations", "mr", "mr centre", "mr UCL", "mr LCL",
                     "mr violations"]
    i_bad = o["series"][4]["data"]
    assert len(i_bad) == 1 and i_bad[0][1] == 30.0 and i_bad[0][0] == o["xAxis"][0]["data"][9]
    mr_bad = o["series"][9]["data"]
    assert mr_bad == [[o["xAxis"][1]["data"][8], 16.0]]  # the moving range starts at point 1
    assert len(o["xAxis"][1]["data"]) == 9
    assert o["series"][2]["data"][0][1] == cs.charts[0].ucl[0]


def test_the_page_draws_the_services_chart(server: HmiServer) -> None:
    """No browser: the page's socket (tests/hmi/nicesocket.py) receives the elements the server renders; the
    chart is drawn from the service's answer (the oven's temperature, recorded live: individuals, no settings)."""
    def samples() -> int:
        r = httpx.get(server.url + "/api/v1/history/raw", params={"tag": OVEN_TEMP, "limit": 1000},
                      headers={PRINCIPAL_HEADER: "admin"}, timeout=30)
        return int(r.json()["count"])
    wait_until(lambda: samples() >= 12, 90.0, "a dozen samples of the oven's temperature recorded")
    page = HmiPage.open(server.url, "no-session", f"/hmi/spc/{OVEN_TEMP}")  # the header auth: olga, windsor
    sock = page.connect()
    try:
        assert sock.wait_connected(), sock.story()
        wait_until(lambda: bool(page.find_all(testid="spc-chart") or page.find_all(testid="spc-reason")), 30.0,
                   "the SPC panel rendered")
        found = page.find_all(testid="spc-chart")
        assert found, [page.elements[i].get("text") for i in page.find_all(testid="spc-reason")]
        options = page.elements[found[0]]["props"]["options"]
        names = [s["name"] for s in options["series"]]
        assert names[:3] == ["i", "i centre", "i UCL"] and "mr violations" in names
        points = options["series"][0]["data"]
        assert len(points) > 10 and all(isinstance(p[1], float) for p in points)
        assert page.find_all(testid="spc-violations")
    finally:
        sock.close()


def test_a_person_reaches_the_chart_from_the_machine_page(visit: Any, server: HmiServer) -> None:
    """As a person uses it: the oven's page links its tag with SPC settings (the demo plant's zone 1 temperature,
    spec 150..170 degC); the link opens the chart drawn in the browser, with the capability figures."""
    def samples() -> int:
        r = httpx.get(server.url + "/api/v1/history/raw", params={"tag": OVEN_TEMP, "limit": 1000},
                      headers={PRINCIPAL_HEADER: "admin"}, timeout=30)
        return int(r.json()["count"])

    wait_until(lambda: samples() >= 12, 90.0, "a dozen samples of the oven's temperature recorded")
    v = visit()
    v.goto(f"/hmi/machine/{OVEN_TEMP.rsplit('/', 1)[0]}")
    v.page.get_by_test_id("spc-links").get_by_role("link").first.click()
    v.page.wait_for_url(f"**/hmi/spc/{OVEN_TEMP}")
    v.page.wait_for_selector('[data-testid="spc-chart"] canvas')
    shown = v.page.locator('[data-testid="spc-capability"] [data-figure]').evaluate_all(
        "els => els.map(e => [e.dataset.figure, e.dataset.value])")
    figures = dict(shown)
    assert set(figures) == {"cp", "cpk", "pp", "ppk", "cpm"}, shown
    assert all(re.fullmatch(r"-?\d+\.\d\d", x) for x in figures.values()), shown  # both limits: every figure
    assert float(figures["cpk"]) <= float(figures["cp"]) and float(figures["ppk"]) <= float(figures["pp"])
    assert not v.foreign()
