"""The line page's Report menu, in a real browser: the PDF and the HTML download through the API (the browser's
own credentials) for the range the page shows, and say the OEE the JSON API answers for that range."""

from __future__ import annotations

import io
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.hmi.conftest import LINE
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer
from tests.hmi.test_export import _download, _query


@pytest.fixture(scope="module")
def api(server: HmiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={PRINCIPAL_HEADER: "windsor-viewer"}, timeout=60) as c:
        yield c


def _oee_text(api: httpx.Client, q: dict[str, str]) -> str:
    o = api.get("/api/v1/oee", params={"scope": LINE, "start": q["start"], "end": q["end"]}).json()
    return f"{o['oee'] * 100:.1f} %"


def test_the_report_menu_downloads_the_range_shown(visit: Any, api: httpx.Client) -> None:
    from pypdf import PdfReader

    v = visit("windsor-viewer")
    v.goto(f"/hmi/line/{LINE}?period=8h")
    v.page.get_by_test_id("oee").wait_for()
    url, body = _download(v.page, "report", "report-pdf")
    q = _query(url)
    assert urlparse(url).path == "/api/v1/reports" and q["scope"] == LINE and q["format"] == "pdf"
    assert int(q["end"]) - int(q["start"]) in range(8 * 3_600_000 - 1000, 8 * 3_600_000 + 1000)  # the 8 h shown
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert f"Line report: {LINE}" in text and f"OEE {_oee_text(api, q)}" in text
    url, body = _download(v.page, "report", "report-html")
    q = _query(url)

    class Headline(HTMLParser):
        found: dict[str, str] = {}
        key: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.key = dict(attrs).get("data-figure") or self.key

        def handle_data(self, data: str) -> None:
            if self.key is not None and data.strip() and data.strip() != self.key:
                self.found[self.key], self.key = data.strip(), None

    h = Headline()
    h.feed(body.decode("utf-8"))
    assert h.found["OEE"] == _oee_text(api, q)
