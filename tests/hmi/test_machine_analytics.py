"""The machine page's one analytics line: the demo press's detector (shadow, not trained yet) as the page's
socket receives it, and the texts of a trained detector and of a RUL estimate (dates in site time)."""

from __future__ import annotations

from plantlink.hmi.analytics_line import anomaly_text, rul_text
from tests.hmi.conftest import PRESS
from tests.hmi.harness import HmiServer
from tests.hmi.nicesocket import HmiPage
from tests.waiting import wait_until


def test_the_press_page_shows_its_detector(server: HmiServer) -> None:
    page = HmiPage.open(server.url, "no-session", f"/hmi/machine/{PRESS}")  # the header auth: windsor
    sock = page.connect()
    try:
        assert sock.wait_connected(), sock.story()
        wait_until(lambda: bool(page.find_all(testid="analytics-line")), 30.0, "the analytics line rendered")
        text = page.elements[page.find_all(testid="analytics-line")[0]].get("text")
        assert text == "Anomaly (shadow): not trained", text
    finally:
        sock.close()


def test_texts() -> None:
    st = {"mode": "alarm", "trained": True, "problem": None, "score": 0.4231, "limit": 1.0}
    assert anomaly_text(st) == "Anomaly score 0.42 (limit 1, alarm)"
    assert anomaly_text({**st, "trained": False}) == "Anomaly (alarm): not trained"
    assert anomaly_text(None) is None
    est = {"hours": 51.6, "lower_hours": 38.2, "upper_hours": 70.4,
           "failure": [0.0, 1_795_003_200.0, 0.0]}  # 2026-11-18 12:00:00 UTC (calendar.timegm)
    assert rul_text({"estimate": est}, "America/Toronto") == (
        "Remaining life 52 h (38 to 70 h), failure expected Wed 18 Nov 07:00:00 EST")
    assert rul_text({"estimate": None, "problem": "cnc1: 0 failure(s)"}, "UTC") == "Remaining life: cnc1: 0 failure(s)"
