"""Alarms that lead somewhere (issue 10, item 13): each row of the summary shows the tag's value and the alarm's
limit, links to the machine page and to a trend around the activation; the banner's counts are labelled; an
alarm is taken out of service and returned from the HMI with a comment. In a real headless Chromium."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

from tests.hmi.conftest import PRINCIPALS, Visit, click_opens, span_us
from tests.hmi.harness import HmiServer
from tests.hmi.test_alarms_control import CNC1, HIGH, VERY_HIGH, VIB, force_vibration, rt
from tests.waiting import wait_until

ROW = f'[data-testid="alarm-list"] [data-alarm="{VERY_HIGH}"]'
TEN_MIN_US = 10 * 60_000_000


def test_row_shows_value_limit_and_leads_to_the_trend(server: HmiServer, visit: Any) -> None:
    force_vibration(server)
    v: Visit = visit()
    v.goto("/hmi/alarms")
    v.page.wait_for_selector(ROW)
    # the tag's live value (the simulator goes on sending), with its unit, beside the model's limit (hihi 7.1)
    seen: list[str] = []

    def shows_value() -> bool:
        seen.append(v.page.locator(f'{ROW} [data-testid="alarm-value"]').inner_text())
        return re.fullmatch(r"[\d,]+\.\d\d mm/s", seen[-1]) is not None

    try:
        wait_until(shows_value, 15.0, "the row shows the tag's value with its unit")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (last shown: {seen[-3:]})") from None
    assert v.page.locator(f'{ROW} [data-testid="alarm-limit"]').inner_text() == "limit > 7.1 mm/s"
    machine = v.page.locator(f'{ROW} [data-testid="alarm-machine"]')
    assert machine.get_attribute("href") == f"/hmi/machine/{CNC1}"

    activated = next(a.activated_us for a in rt(server).alarm_engine.alarms() if a.key == VERY_HIGH)
    assert activated is not None
    v.page.click(f'{ROW} [data-testid="alarm-trend"]')
    v.page.wait_for_url(f"**/hmi/machine/{CNC1}?*")
    caption = v.page.locator('[data-testid="trend-range"][data-start-us]')
    caption.wait_for()
    start, end = span_us(caption)
    assert start == activated - TEN_MIN_US
    assert end > activated
    assert "Vibration" in caption.inner_text() or "vibration" in caption.inner_text()
    tag = v.page.locator('[data-testid="trend-tag"]')
    assert "ibration" in tag.inner_text()

    # a machine page with a reversed range says so and shows the page's default range (the last 8 h, following
    # now; the range picker, docs/hmi.md)
    v.goto(f"/hmi/machine/{CNC1}?tag={VIB}&from=200&to=100")
    caption = v.page.locator('[data-testid="trend-range"][data-start-us]')
    caption.wait_for()
    s2, e2 = span_us(caption)
    assert e2 - s2 == 8 * 3600 * 1_000_000
    assert "reversed" in v.page.get_by_test_id("range-error").inner_text()


def test_banner_counts_are_labelled(server: HmiServer, visit: Any) -> None:
    v: Visit = visit()
    v.goto("/hmi/")
    v.page.wait_for_selector('[data-testid="alarm-banner"]')
    labels = v.page.eval_on_selector_all(
        '[data-testid="alarm-banner"] [data-priority]',
        "els => els.map(e => [e.dataset.priority, e.getAttribute('aria-label'), e.innerText.trim()])")
    assert [p for p, _, _ in labels] == ["critical", "high", "medium", "low"]
    for p, aria, text in labels:
        assert aria is not None and aria.startswith(f"{p.capitalize()} alarms: ")
        short, count = text.split()
        assert short == {"critical": "C", "high": "H", "medium": "M", "low": "L"}[p] and count.isdigit()


def test_out_of_service_round_trip(server: HmiServer, visit: Any) -> None:
    force_vibration(server)
    engine = rt(server).alarm_engine
    v: Visit = visit()
    v.goto("/hmi/alarms")
    v.page.wait_for_selector(ROW)
    click_opens(v, f'{ROW} [data-testid="oos"]', '[data-testid="oos-confirm"]')
    v.page.click('[data-testid="oos-confirm"]')  # no comment: refused
    v.page.wait_for_selector("text=a comment is required")
    assert engine.state_of(VERY_HIGH) != "out_of_service"
    v.page.fill('[data-testid="oos-comment"]', "sensor being replaced")
    v.page.click('[data-testid="oos-confirm"]')
    wait_until(lambda: engine.state_of(VERY_HIGH) == "out_of_service", 10.0, "the engine took it out of service")

    def journaled() -> bool:  # the engine changes first; the recorder writes the entry just after
        entries, _ = rt(server).alarms.store.journal(alarms=[VERY_HIGH])
        return any(e.to_state == "out_of_service" and e.actor == "olga" and e.comment == "sensor being replaced"
                   for e in entries)

    wait_until(journaled, 10.0, "the journal holds the action with its actor and comment")
    wait_until(lambda: v.page.locator(ROW).count() == 0, 10.0, "an alarm out of service is not annunciated")

    v.page.click('[data-testid="filter-state"]')
    v.page.click('.q-menu >> text=Out of service')
    v.page.wait_for_selector(f'{ROW}[data-state="out_of_service"]')
    click_opens(v, f'{ROW} [data-testid="return-to-service"]', '[data-testid="oos-comment"]')
    v.page.fill('[data-testid="oos-comment"]', "sensor back")
    v.page.click('[data-testid="oos-confirm"]')
    wait_until(lambda: engine.state_of(VERY_HIGH) != "out_of_service", 10.0, "returned to service")


def test_a_viewer_sees_the_row_but_cannot_take_it_out_of_service(server: HmiServer, visit: Any) -> None:
    force_vibration(server)
    v: Visit = visit("windsor-viewer")
    v.goto("/hmi/alarms")
    v.page.wait_for_selector(f'{ROW} [data-testid="alarm-trend"]')
    assert v.page.locator('[data-testid="oos"]').count() == 0
    assert v.page.locator('[data-testid="return-to-service"]').count() == 0


def test_the_sound_switch_is_kept_in_the_browser(server: HmiServer, visit: Any) -> None:
    v: Visit = visit()
    v.goto("/hmi/alarms")
    switch = v.page.locator('[data-testid="alarm-sound"]')
    assert switch.get_attribute("aria-checked") == "false"  # off by default
    switch.click()
    wait_until(lambda: v.page.evaluate("localStorage.getItem('plantlink.alarmSound')") == "1", 5.0,
               "the switch kept in localStorage")
    v.goto("/hmi/alarms")
    wait_until(lambda: v.page.locator('[data-testid="alarm-sound"]').get_attribute("aria-checked") == "true", 5.0,
               "the switch on again after a reload")


class Watch:
    """Reads ``read`` every 10 ms in a thread until ``stop``: whether it ever differed from ``before`` (a change
    and a change back between two reads of the test's own would otherwise go unseen)."""

    def __init__(self, read: Callable[[], Any]):
        self.read, self.seen, self.done = read, [read()], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.01):
            self.seen.append(self.read())

    def stop(self, before: Any) -> bool:
        self.done.set()
        self.thread.join()
        self.seen.append(self.read())
        return any(s != before for s in self.seen)


def test_rows_are_kept_in_place_when_another_alarm_changes(server: HmiServer, visit: Any) -> None:
    """A row whose alarm did not change stays the same element in the browser when another row changes or
    goes (the list used to be drawn again on every change, and a click on a row being replaced was lost)."""
    force_vibration(server)
    alarms, engine, olga = rt(server).alarms, rt(server).alarm_engine, PRINCIPALS["default"]
    high = f'[data-testid="alarm-list"] [data-alarm="{HIGH}"]'

    def view(key: str) -> Any:
        return next((a for a in engine.alarms() if a.key == key), None)

    v: Visit = visit()
    for _ in range(5):  # an attempt in which the other alarm itself changed (the simulator runs on) proves nothing
        for key in (VERY_HIGH, HIGH):  # out of service: a state that holds still whatever the simulator sends
            if engine.state_of(key) != "out_of_service":
                server.call(asyncio.to_thread(alarms.out_of_service, key, True, olga, "kept-rows test"))
        before = view(HIGH)  # before the page draws it: a change after this is seen below
        watch = Watch(lambda: view(HIGH))  # the tag's activity moves on out of service and can come back
        v.goto("/hmi/alarms")
        v.page.click('[data-testid="filter-state"]')
        v.page.click('.q-menu >> text=Out of service')
        v.page.wait_for_selector(f'{ROW}[data-state="out_of_service"]')
        v.page.wait_for_selector(f'{high}[data-state="out_of_service"]')
        # the row's element: NiceGUI's id for it (a row drawn again is a new element with a new id, even where
        # the browser keeps or rebuilds its DOM nodes, as after a reconnection)
        element = v.page.get_attribute(high, "id")
        v.page.click(f'{ROW} [data-testid="return-to-service"]')
        v.page.fill('[data-testid="oos-comment"]', "back")
        v.page.click('[data-testid="oos-confirm"]')
        wait_until(lambda: v.page.locator(ROW).count() == 0, 10.0, "the returned alarm leaves the out-of-service list")
        if not watch.stop(before):
            assert element and v.page.get_attribute(high, "id") == element, "the other row was drawn again"
            break
    else:
        raise AssertionError("the other alarm changed in every attempt")
    server.call(asyncio.to_thread(alarms.out_of_service, HIGH, False, olga, "kept-rows test done"))
