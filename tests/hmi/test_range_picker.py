"""The time-range picker (issue 10, item 9) in a real browser: a preset changes the range of every panel of the
line page and of the machine page; a reversed from/to is refused with a message and the figures stay; "compare
with the previous period" shows the previous period's OEE equal to what ``/api/v1/oee`` answers for it, asked
here independently of the HMI. The ranges are inside the seeded hours (tests/hmi/seed.py), in the past, so
that both sides read the same stored data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.hmi.conftest import LINE, PRESS, SEEDED, Visit, attributes
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer

TZ = "America/Toronto"  # Windsor, the site of LINE
MIN_US = 60 * 1_000_000
HOUR_US = 60 * MIN_US
DATE = "input[data-testid={0}], [data-testid={0}] input"


@pytest.fixture(scope="module")
def api(server: HmiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={PRINCIPAL_HEADER: "admin"}, timeout=60) as c:
        yield c


def local(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, ZoneInfo(TZ)).strftime("%Y-%m-%dT%H:%M")


def hours_back(a: int, b: int) -> tuple[int, int]:
    """[end - a h, end - b h] of the seeded history, on whole minutes."""
    end = SEEDED.end_us // MIN_US * MIN_US
    return end - a * HOUR_US, end - b * HOUR_US


def oee_api(api: httpx.Client, start_us: int, end_us: int) -> dict[str, Any]:
    r = api.get("/api/v1/oee", params={"scope": LINE, "start": start_us // 1000, "end": end_us // 1000})
    assert r.status_code == 200, r.text
    return dict(r.json())


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def table(v: Visit) -> dict[str, list[str]]:
    """The OEE table of the line page: machine name -> its cells."""
    rows = v.page.locator('[data-testid="oee"] tbody tr').all_inner_texts()
    return {r.split("\t")[0]: [c.strip() for c in r.split("\t")] for r in rows}


def header(v: Visit) -> list[str]:
    return [c.strip() for c in v.page.locator('[data-testid="oee"] thead tr').first.inner_text().split("\t")]


def spans(v: Visit, *testids: str) -> list[tuple[str, str]]:
    return [tuple(a or "" for a in attributes(v.page.get_by_test_id(t), "data-start-us", "data-end-us"))  # type: ignore[misc]
            for t in testids]


def open_line(v: Visit, **query: str) -> None:
    v.goto(f"/hmi/line/{LINE}?{urlencode(query)}")
    v.page.wait_for_selector('[data-testid="oee"] tbody tr')
    v.page.wait_for_selector('[data-testid="pareto-note"]:not(:empty)')


def test_a_preset_changes_the_range_of_every_panel(visit: Any, api: httpx.Client) -> None:
    v = visit()
    a, b = hours_back(2, 1)
    open_line(v, **{"from": local(a), "to": local(b)})
    assert spans(v, "range", "oee", "bottleneck", "pareto", "energy") == [(str(a), str(b))] * 5
    line = oee_api(api, a, b)
    assert table(v)["Line"][4:6] == [pct(line["oee"]), f"{line['inputs']['pq']:,.0f}"]  # OEE, parts: the API's
    parts_before = table(v)["Line"][5]
    caption = v.page.get_by_test_id("range").inner_text()
    assert f"Times in {TZ}" in caption
    v.page.get_by_test_id("period").get_by_role("button", name="Last 24 h", exact=True).click()
    v.page.wait_for_url("**period=24h**")
    v.page.wait_for_selector('[data-testid="oee"] tbody tr')
    start, end = (int(x) for x in spans(v, "range")[0])
    assert end - start == 24 * HOUR_US and end > SEEDED.end_us
    assert spans(v, "oee", "bottleneck", "pareto", "energy") == [(str(start), str(end))] * 4
    energy = api.get("/api/v1/energy", params={"scope": LINE, "start": start // 1000, "end": end // 1000}).json()
    cells = {r.split("\t")[0]: r.split("\t") for r in
             v.page.locator('[data-testid="energy"] tbody tr').all_inner_texts()}
    assert set(cells) == {"press1", "conveyor1", "Line"} and energy["total_kwh"] > 0  # the live simulator's power
    assert v.page.get_by_test_id("range").inner_text() != caption
    assert table(v)["Line"][5] != parts_before  # more hours, more parts
    v.page.go_back()  # the range is in the address: back is the range before
    v.page.wait_for_url("**from=**")
    v.page.wait_for_selector('[data-testid="oee"] tbody tr')
    assert spans(v, "range", "oee") == [(str(a), str(b))] * 2 and table(v)["Line"][5] == parts_before
    v.goto(f"/hmi/machine/{PRESS}?period=24h")  # the machine page: the trend and the states read the range
    v.page.wait_for_selector('[data-testid="trend-range"][data-points]')
    (p_start, p_end), = spans(v, "range")
    assert int(p_end) - int(p_start) == 24 * HOUR_US
    for panel in ("trend-range", "timeline"):  # "last 24 h" moves on with time: 24 h ending at or after the pick
        start, end = spans(v, panel)[0]
        # both ends read at once (CI run fin4 read a start and the next redraw's end: 24 h + 0.31 s)
        assert int(end) - int(start) == 24 * HOUR_US and 0 <= int(start) - int(p_start) < 5 * MIN_US, panel


def test_a_reversed_range_is_refused_and_the_figures_stay(visit: Any) -> None:
    v = visit()
    a, b = hours_back(3, 1)
    open_line(v, **{"from": local(a), "to": local(b)})
    shown, figures, note = v.page.url, table(v), v.page.get_by_test_id("pareto-note").inner_text()
    v.page.locator(DATE.format("from")).fill(local(b))
    v.page.locator(DATE.format("to")).fill(local(a))
    v.page.get_by_test_id("apply").click()
    error = v.page.get_by_test_id("range-error")
    error.wait_for(state="visible")
    assert "reversed" in error.inner_text()
    assert v.page.url == shown and table(v) == figures  # the last valid range, its figures
    assert v.page.get_by_test_id("pareto-note").inner_text() == note
    v.page.locator(DATE.format("from")).fill(local(a))
    v.page.locator(DATE.format("to")).fill(local(a + 40 * 86400 * 1_000_000))
    v.page.get_by_test_id("apply").click()
    v.page.wait_for_function("() => document.querySelector('[data-testid=range-error]').innerText.includes('long')")
    assert "at most 31" in error.inner_text() and v.page.url == shown
    open_line(v, **{"from": local(b), "to": local(a)})  # an address with one: said, and the default (today)
    assert "reversed" in v.page.get_by_test_id("range-error").inner_text()
    assert v.page.get_by_test_id("period").locator('[aria-pressed="true"]').inner_text() == "Today"


def test_compare_shows_the_previous_periods_oee_as_the_api_answers_it(visit: Any, api: httpx.Client) -> None:
    v = visit()
    a, b = hours_back(2, 1)
    open_line(v, **{"from": local(a), "to": local(b)})
    v.page.get_by_test_id("compare-switch").click()
    v.page.wait_for_url("**compare=1**")
    v.page.wait_for_selector('[data-testid="oee"] tbody tr')
    cols = header(v)
    assert cols[4:7] == ["OEE", "OEE, previous period", "Change"]
    now, before = oee_api(api, a, b), oee_api(api, 2 * a - b, a)  # the hour before: [end - 3 h, end - 2 h)
    assert before["end_ms"] == a // 1000 and before["start_ms"] == (2 * a - b) // 1000
    rows = table(v)
    expected = {"Line": (now, before)}
    for m_now, m_before in zip(now["machines"], before["machines"], strict=True):
        expected[m_now["machine"].rsplit("/", 1)[-1]] = (m_now, m_before)
    for name, (x, y) in expected.items():
        d = round(100 * x["oee"], 1) - round(100 * y["oee"], 1)
        change = "±0.0 pts" if abs(d) < 0.05 else f"{d:+.1f} pts"
        assert rows[name][4:7] == [pct(x["oee"]), pct(y["oee"]), change], name
    assert "Previous period:" in v.page.get_by_test_id("pareto-note").inner_text()
    assert "compared with" in v.page.get_by_test_id("range").inner_text()


def test_oee_over_time_compares_with_the_previous_period(visit: Any, api: httpx.Client) -> None:
    v = visit()
    a, b = hours_back(2, 1)
    v.goto(f"/hmi/oee?{urlencode({'scope': LINE, 'from': local(a), 'to': local(b), 'compare': '1', 'by': 'day'})}")
    versus = v.page.get_by_test_id("oee-versus")
    versus.wait_for()
    now, before = oee_api(api, a, b), oee_api(api, 2 * a - b, a)
    d = round(100 * now["oee"], 1) - round(100 * before["oee"], 1)
    change = "±0.0 pts" if abs(d) < 0.05 else f"{d:+.1f} pts"
    assert versus.inner_text() == f"OEE {pct(now['oee'])} vs {pct(before['oee'])} in the previous period, {change}"
