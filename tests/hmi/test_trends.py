"""Trends as engineers use them, in a real browser: several pens with their units (a second unit gets a second
axis), the cursor readout of every pen compared with the historian's raw values read through the API, downtime
marked on the time axis, a note added by one user shown on another user's trend, and a saved view reopened
with its pens."""

from __future__ import annotations

from typing import Any

import httpx

from plantlink.display import number_text
from tests.hmi.conftest import PRESS, Visit, span_us
from tests.hmi.harness import PRINCIPAL_HEADER, HmiServer
from tests.waiting import wait_until

OVEN = "windsor/body-paint/body-line-1/oven1"
CAPTION = '[data-testid="trend-range"]'
OPTION_JS = "() => { const c = getElement(document.querySelector('[data-testid=trend-chart]')).chart;" \
            " const o = c.getOption(); return {series: o.series.map(s => ({name: s.name, n: s.data.length," \
            " axis: s.yAxisIndex, areas: (s.markArea && s.markArea.data || []).map(a => a[0])," \
            " lines: (s.markLine && s.markLine.data || []).map(l => l.name)}))," \
            " axes: o.yAxis.map(a => a.name)}; }"


def _pens(v: Visit) -> list[str]:
    return (v.page.get_attribute(CAPTION, "data-pens") or "").split()


def _api(server: HmiServer, path: str, **params: Any) -> Any:
    r = httpx.get(server.url + path, params=params, headers={PRINCIPAL_HEADER: "admin"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _open_select(v: Visit, testid: str) -> None:
    """Open a select's menu by its arrow (a click on a chip would remove that pen)."""
    field = v.page.locator(f'.q-field:has([data-testid="{testid}"]), .q-field[data-testid="{testid}"]').first
    box = field.bounding_box()
    assert box is not None
    field.click(position={"x": box["width"] - 14, "y": box["height"] / 2})  # scrolled to, and not covered


def _add_pen(v: Visit, label: str) -> None:
    _open_select(v, "trend-tag")
    v.page.locator(".q-menu .q-item", has_text=label).first.click()
    v.page.keyboard.press("Escape")


def _wait_points(v: Visit, pens: int) -> None:
    """Until every pen has samples drawn (the live recorder writes the oven's as the server runs)."""
    def drawn() -> bool:
        o = v.page.evaluate(OPTION_JS)
        return len(_pens(v)) == pens and all(s["n"] > 0 for s in o["series"][:pens])
    wait_until(drawn, 60.0, f"{pens} pens drawn with samples")


def test_pens_units_readout_and_downtime_marks(server: HmiServer, visit: Any) -> None:
    v: Visit = visit()
    v.goto(f"/hmi/machine/{OVEN}")
    # the oven opens on zone 1's temperature with its setpoint: one unit, one axis
    v.page.wait_for_selector(f"{CAPTION}[data-pens]")
    assert _pens(v) == [f"{OVEN}/zone1_temperature", f"{OVEN}/zone1_setpoint"]
    # the machine's downtime over the shown hour is shaded on the time axis (the seed stops it every 40 min)
    ws, we = span_us(v.page.locator(CAPTION))
    events = _api(server, "/api/v1/downtime", machine=OVEN, start=str(ws // 1000), end=str(we // 1000),
                  limit=1000)["items"]
    assert events, "the seed left no stop in the last hour"
    areas = [a for s in v.page.evaluate(OPTION_JS)["series"] for a in s["areas"] if a.get("kind") == "downtime"]
    assert sorted(a["start_ms"] for a in areas) == sorted(e["start_ms"] for e in events)
    v.page.click('[data-testid="trend-span"] >> text=15 min')
    _add_pen(v, "gas_flow")
    _wait_points(v, 3)
    o = v.page.evaluate(OPTION_JS)
    assert o["axes"] == ["°C", "m³/h"]
    assert [(s["name"], s["axis"]) for s in o["series"][:3]] == [
        ("zone1_temperature (°C)", 0), ("zone1_setpoint (°C)", 0), ("gas_flow (m³/h)", 1)]

    # the readout at the cursor: each pen's value, rounded as the pages show values, with its unit
    chart = v.page.locator('[data-testid="trend-chart"]')
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    assert box is not None
    # where the samples are (the oven's are recorded live, since the server started), off any shaded stop
    px = v.page.evaluate("() => { const c = getElement(document.querySelector('[data-testid=trend-chart]')).chart;"
                         " const d = c.getOption().series[0].data; const t = d[Math.floor(d.length * 0.6)][0];"
                         " return c.convertToPixel({xAxisIndex: 0}, t); }")
    x, y = box["x"] + px, box["y"] + box["height"] * 0.5
    v.page.mouse.move(x - 5, y)
    v.page.mouse.move(x, y)
    tip = v.page.locator('[data-testid="trend-chart"] div[style*="z-index: 9999999"]')
    wait_until(lambda: "gas_flow" in (tip.first.inner_text() if tip.count() else ""), 15.0, "the readout shows")
    lines = tip.first.inner_text().strip().splitlines()
    shown = dict(line.split(": ", 1) for line in lines[1:])
    assert set(shown) == {"zone1_temperature", "zone1_setpoint", "gas_flow"}, lines
    assert shown["gas_flow"].endswith(" m³/h") and shown["zone1_temperature"].endswith(" °C")
    at_ms = v.page.evaluate(f"() => getElement(document.querySelector('[data-testid=trend-chart]')).chart"
                            f".convertFromPixel({{xAxisIndex: 0}}, {x - box['x']})")
    ws, we = span_us(v.page.locator(CAPTION))
    near_ms = (we - ws) // 1000 // 200  # the nearest drawn point: a few downsampled steps either side at most
    for name in shown:
        raw = _api(server, "/api/v1/history/raw", tag=f"{OVEN}/{name}", start=str(ws // 1000),
                   end=str(int(at_ms) + near_ms), limit=100_000)
        pairs = [(ts, val) for ts, val in zip(raw["ts_ms"], raw["value"], strict=True) if val is not None]
        held = [val for ts, val in pairs if ts <= at_ms][-1:]  # a steady tag: its last value before the cursor
        expected = {number_text(val).replace(",", "") for ts, val in pairs if ts >= at_ms - near_ms} | {
            number_text(val).replace(",", "") for val in held}
        assert shown[name].rsplit(" ", 1)[0] in expected, (name, shown[name], sorted(expected))


def test_a_note_shows_on_another_users_trend_and_a_view_reopens(server: HmiServer, visit: Any) -> None:
    olga: Visit = visit()  # operator at windsor
    olga.goto(f"/hmi/machine/{PRESS}")
    olga.page.wait_for_selector(f"{CAPTION}[data-pens]")
    olga.page.click('[data-testid="note-add"]')
    olga.page.fill('textarea[data-testid="note-text"], [data-testid="note-text"] textarea', "die changed <b>early</b>")
    olga.page.click('[data-testid="note-save"]')
    olga.page.locator('[data-testid="trend-notes"] [data-note]', has_text="die changed").wait_for()

    victor: Visit = visit("windsor-viewer")
    victor.goto(f"/hmi/machine/{PRESS}")
    row = victor.page.locator('[data-testid="trend-notes"] [data-note]', has_text="die changed <b>early</b>")
    row.wait_for()
    assert "olga" in row.inner_text()
    assert victor.page.locator('[data-testid="note-add"]').count() == 0  # a viewer adds none
    assert row.locator('[data-testid="note-delete"]').count() == 0
    wait_until(lambda: any("die changed <b>early</b>" in name for s in victor.page.evaluate(OPTION_JS)["series"]
                           for name in s["lines"]), 15.0, "the note is marked on the chart")

    # olga saves her pens (the press's speed and its setpoint, plus tonnage) as a view, and opens it again
    _add_pen(olga, "tonnage")
    wait_until(lambda: len(_pens(olga)) == 3, 15.0, "three pens")
    saved = _pens(olga)
    olga.page.click('[data-testid="view-save"]')
    olga.page.fill('input[data-testid="view-name"], [data-testid="view-name"] input', "Press check")
    olga.page.click('[data-testid="view-save-confirm"]')
    olga.page.locator('[data-testid="view-name"]').wait_for(state="detached")
    olga.goto(f"/hmi/machine/{PRESS}")
    olga.page.wait_for_selector(f"{CAPTION}[data-pens]")
    assert _pens(olga) == saved[:2]  # a fresh page opens on the default pens
    _open_select(olga, "trend-views")
    olga.page.locator(".q-menu .q-item", has_text="Press check").first.click()
    wait_until(lambda: _pens(olga) == saved, 15.0, "the saved view's pens")
