"""OEE over time (issue 10, item 8): the page's figures are the API's, per shift and per day, for every scope
of the demo plant; a reversed range is refused with a message and the page keeps its range (the range picker's
own rules: tests/hmi/test_timerange.py); the page is reached by a click from the line page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from plantlink.api.kpi import figures
from plantlink.hmi import data
from plantlink.hmi.data import PlantView
from plantlink.samples import now_us
from tests.hmi.conftest import LINE, PRINCIPALS
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer
from tests.hmi.test_same_figures import _clean

ADMIN = PRINCIPALS["admin"]
DAY_US = 86400 * 1_000_000
DATE = "input[data-testid={0}], [data-testid={0}] input"


@pytest.fixture(scope="module")
def api(server: HmiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={PRINCIPAL_HEADER: "admin"}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def view(server: HmiServer) -> PlantView:
    from plantlink.hmi.widgets import hmi

    return hmi().view


def _get(api: httpx.Client, path: str, **params: Any) -> Any:
    r = api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _mine(f: Any) -> Any:
    return _clean(json.loads(json.dumps(figures(f))))


def _scopes(view: PlantView) -> list[str]:
    out = []
    for s in view.sites:
        out.append(s.name)
        for ln in s.lines:
            out += [f"{s.name}/{ln.area}", ln.path, *[m.path for m in ln.machines if m.model.production]]
    return sorted(set(out))


@pytest.mark.parametrize("by", ["shift", "day"])
def test_the_page_figures_are_the_apis(view: PlantView, api: httpx.Client, by: str) -> None:
    until = (now_us() - 10_000_000) // 1000 * 1000  # stored before: both sides see the same
    start = until - 2 * DAY_US
    window = {"start": start // 1000, "end": until // 1000}
    compared = 0
    for scope in _scopes(view):
        whole, rows = data.oee_over_time(view.services, ADMIN, scope, start, until, by)
        total = _get(api, "/api/v1/oee", scope=scope, **window)  # the range, as "over the whole range" shows
        assert {k: _clean(total[k]) for k in _mine(whole.total)} == _mine(whole.total), scope
        assert [(m, _mine(f)) for m, f in whole.machines] == [
            (m["machine"], {k: _clean(m[k]) for k in _mine(f)}) for m, (_, f) in zip(
                total.get("machines", []), whole.machines, strict=True)], scope
        if by == "shift":
            theirs = _get(api, "/api/v1/oee/shifts", scope=scope, **window)["shifts"]
        else:
            theirs = [_get(api, "/api/v1/oee", scope=scope, start=r.start_us // 1000, end=r.end_us // 1000)
                      for r in rows]
        assert [(r.start_us // 1000, r.end_us // 1000) for r in rows] == [(t["start_ms"], t["end_ms"])
                                                                          for t in theirs], scope
        for r, t in zip(rows, theirs, strict=True):
            assert {k: _clean(t[k]) for k in _mine(r.total)} == _mine(r.total), (scope, r.start_us)
            if by == "shift":  # read once for every shift: the same as each shift read alone
                alone = _get(api, "/api/v1/oee", scope=scope, start=r.start_us // 1000, end=r.end_us // 1000)
                assert {k: _clean(alone[k]) for k in _mine(r.total)} == _mine(r.total), (scope, r.start_us)
                assert t["top_reason"] == alone["top_reason"], (scope, r.start_us)
                assert [m["top_reason"] for m in t.get("machines", [])] == \
                    [m["top_reason"] for m in alone.get("machines", [])], (scope, r.start_us)
            compared += 1
            if scope in view.lines:  # the money: the API's line costs over the same row
                money = _get(api, "/api/v1/lines/costs", line=scope, start=r.start_us // 1000, end=r.end_us // 1000)
                assert data.losses_money(view, r) == {money["currency"]: money["total"]}, (scope, r.start_us)
    assert compared >= 10


def test_day_rows_are_the_sites_local_days(view: PlantView) -> None:
    site = view.sites[0]
    until = now_us()
    found = data.days(view.services, site.name, until - 3 * DAY_US, until)
    assert 3 <= len(found) <= 4 and found[-1][1] == until
    for (_, e), (s, _) in pairwise(found):
        assert e == s == view.services.periods.midnight(site.name, s)


def test_the_page_refuses_a_reversed_range_and_keeps_its_own(visit: Any) -> None:
    v = visit()
    v.goto(f"/hmi/oee?scope={LINE}&range=7d&by=day")
    v.page.wait_for_selector('[data-testid="periods-table"]')
    shown = v.page.url
    v.page.locator(DATE.format("from")).fill("2026-11-20T06:00")
    v.page.locator(DATE.format("to")).fill("2026-11-10T06:00")
    v.page.get_by_test_id("apply").click()
    error = v.page.get_by_test_id("range-error")
    error.wait_for(state="visible")
    assert "reversed" in error.inner_text()
    assert v.page.url == shown  # the last valid range is kept
    v.goto(f"/hmi/oee?scope={LINE}&from=2026-11-20&to=2026-11-10")  # a link with one: said, and the default
    assert "reversed" in v.page.get_by_test_id("range-error").inner_text()
    v.page.wait_for_selector('[data-testid="periods-table"]')


def test_the_page_is_reached_from_the_line_page(visit: Any, view: PlantView) -> None:
    v = visit()
    v.goto(f"/hmi/line/{LINE}")
    v.page.get_by_test_id("oee-link").click()
    v.page.wait_for_url("**/hmi/oee?**")
    assert parse_qs(urlparse(v.page.url).query)["scope"] == [LINE]
    v.page.wait_for_selector('[data-testid="periods-table"]')
    assert "Times in " in v.page.get_by_test_id("zone").inner_text()
    v.page.get_by_test_id("by").get_by_role("button", name="By day", exact=True).click()
    v.page.wait_for_url("**by=day**")
    v.page.wait_for_selector('[data-testid="periods-table"]')
    cells = v.page.locator('[data-testid="compare-machine"] tbody tr').all_inner_texts()
    counted = [m.name for m in view.line(LINE).machines if m.model.production is not None]
    assert [c.split("\t", 1)[0] for c in cells] == counted  # machine against machine


def test_the_overview_links_each_site_and_line_to_its_page(visit: Any, view: PlantView) -> None:
    v = visit("admin")
    v.goto("/hmi/")
    site = view.sites[0]
    v.page.locator(f'[data-site="{site.name}"] [data-testid="oee-link"]').first.click()
    v.page.wait_for_url("**/hmi/oee?**")
    assert parse_qs(urlparse(v.page.url).query)["scope"] == [site.name]
    lines = v.page.locator('[data-testid="compare-line"] tbody tr')
    lines.first.wait_for()
    assert lines.count() == len(site.lines)  # line against line
