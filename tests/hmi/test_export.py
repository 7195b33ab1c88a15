"""Export from the pages (issue 10, item 11), in a real browser: the trend's and the line's OEE table's Export
menus download a file (through the API, the browser's own credentials) whose rows are what the JSON API answers
for the same range; a large export says its size and asks first."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyarrow.csv as pacsv
import pytest

from plantlink.services import export as ex
from tests.api.xlsxread import read_xlsx
from tests.hmi.conftest import LINE, PRESS, SEEDED
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer

MIN_US = 60 * 1_000_000


@pytest.fixture(scope="module")
def api(server: HmiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={PRINCIPAL_HEADER: "windsor-viewer"}, timeout=60) as c:
        yield c


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def _download(page: Any, menu: str, item: str, confirm: bool = False) -> tuple[str, bytes]:
    page.get_by_test_id(menu).click()
    with page.expect_download() as info:
        page.get_by_test_id(item).click()
        if confirm:  # large: the size is said first, and the download waits for a yes
            dialog = page.get_by_test_id("export-confirm")
            dialog.wait_for()
            assert "rows" in dialog.inner_text() and "MB" in dialog.inner_text()
            page.get_by_test_id("export-go").click()
    d = info.value
    path = d.path()
    assert d.failure() is None
    with open(path, "rb") as f:
        return d.url, f.read()


def test_the_trend_export_downloads_the_samples_shown(visit: Any, api: httpx.Client, server: HmiServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from plantlink.hmi.widgets import hmi

    production = hmi().view.machines[PRESS].model.production
    assert production is not None
    tag = f"{PRESS}/{production.produced}"  # a counter the seed wrote, one sample a minute: history, not live
    start, end = SEEDED.start_us + 30 * MIN_US, SEEDED.start_us + 90 * MIN_US
    monkeypatch.setattr(ex, "CONFIRM_ROWS", 0)  # every export is "large": the page must ask first
    v = visit("windsor-viewer")
    v.goto(f"/hmi/machine/{PRESS}?tag={tag}&from={start}&to={end}")
    v.page.wait_for_selector("[data-testid=trend-range][data-points]")
    url, body = _download(v.page, "trend-export", "trend-export-csv", confirm=True)
    q = _query(url)
    assert urlparse(url).path == "/api/v1/export/trend" and q["tag"] == tag and q["format"] == "csv"
    got = pacsv.read_csv(io.BytesIO(body), convert_options=pacsv.ConvertOptions(
        column_types={"time": "string", "time_utc": "string"}))
    raw = api.get("/api/v1/history/raw", params={"tag": tag, "start": q["start"], "end": q["end"],
                                                 "limit": 1_000_000}).json()
    # 60 samples in the hour shown; 61 when its end, rounded up to the millisecond of the URL, passes one
    assert got.num_rows == raw["count"] and raw["count"] in (60, 61)
    assert [t[:19] for t in got.column("time_utc").to_pylist()] == [t[:19] for t in raw["ts"]]
    assert got.column("value").to_pylist() == pytest.approx(raw["value"])


def test_the_oee_table_export_downloads_the_apis_figures(visit: Any, api: httpx.Client) -> None:
    v = visit("windsor-viewer")
    v.goto(f"/hmi/line/{LINE}?period=8h")
    v.page.get_by_test_id("oee").wait_for()
    url, body = _download(v.page, "oee-export", "oee-export-xlsx")
    q = _query(url)
    assert (q["scope"], q["by"], q["format"]) == (LINE, "machine", "xlsx")
    rows = read_xlsx(body)
    got = [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    want = api.get("/api/v1/oee", params={"scope": LINE, "start": q["start"], "end": q["end"]}).json()
    expected = [(m["machine"], m["oee"], m["inputs"]["pq"]) for m in want["machines"]] + [
        (LINE, want["oee"], want["inputs"]["pq"])]
    assert [(g["scope"], g.get("oee"), g["produced"]) for g in got] == [
        (s, pytest.approx(o) if o is not None else None, pytest.approx(p)) for s, o, p in expected]


def test_the_energy_panel_export_downloads_the_apis_figures(visit: Any, api: httpx.Client) -> None:
    v = visit("windsor-viewer")
    v.goto(f"/hmi/line/{LINE}?period=8h")
    v.page.get_by_test_id("energy").wait_for()
    url, body = _download(v.page, "energy-export", "energy-export-csv")
    q = _query(url)
    assert urlparse(url).path == "/api/v1/export/energy" and (q["scope"], q["by"], q["format"]) == (
        LINE, "machine", "csv")
    got = pacsv.read_csv(io.BytesIO(body), convert_options=pacsv.ConvertOptions(
        column_types={c: "string" for c in ("start", "end", "start_utc", "end_utc", "shift", "day", "currency")}))
    want = api.get("/api/v1/energy", params={"scope": LINE, "start": q["start"], "end": q["end"]}).json()
    expected = [(m["machine"], m["total_kwh"], m["idle_kwh"]) for m in want["machines"]] + [
        (LINE, want["total_kwh"], want["idle_kwh"])]
    assert want["total_kwh"] > 0 and len(expected) >= 3
    assert list(zip(got.column("scope").to_pylist(), got.column("total_kwh").to_pylist(),
                    got.column("idle_kwh").to_pylist(), strict=True)) == [
        (s, pytest.approx(t), pytest.approx(i)) for s, t, i in expected]
