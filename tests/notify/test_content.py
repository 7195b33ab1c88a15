"""What a notification says (issue 10, item 13): the alarm's limit beside the value, and the time in the site's
zone with its name (not UTC), in e-mails (to an aiosmtpd server) and webhooks (to an HTTP server)."""

from __future__ import annotations

from typing import Any

import pytest

from plantlink.engines.alarms.compiled import compile_alarms
from plantlink.engines.alarms.engine import AlarmEngine
from plantlink.model.alarms import AlarmDef
from plantlink.model.notify import Notifications
from plantlink.model.schema import Tag
from plantlink.notify import Notifier
from plantlink.testing.notifier import EVENT
from plantlink.testing.waiting import wait_until
from tests.conftest import _free_port
from tests.servers import SmtpInbox, WebhookReceiver

ZONES = {"s1": "Europe/Berlin"}
#: EVENT's time (2026-03-02 00:00 UTC) in Berlin (CET, +01:00)
LOCAL = "2026-03-02 01:00:00 CET (Europe/Berlin)"
HIHI = {**EVENT, "limit": 280.0, "limit_text": "> 280"}


async def _deliver(settings: dict[str, Any], event: dict[str, Any], tags: dict[str, Tag] | None = None) -> Notifier:
    n = Notifier(Notifications.model_validate({**settings, "routes": [{"targets": ["t"]}]}), timezones=ZONES,
                 tags=tags)
    n.start()
    n.on_event(dict(event))
    try:
        await wait_until(lambda: n.stats["sent"] == 1, "the notification sent")
    finally:
        await n.stop()
    return n


@pytest.mark.asyncio
async def test_an_email_carries_the_limit_and_the_sites_local_time() -> None:
    inbox = SmtpInbox(_free_port()).start()
    try:
        await _deliver({"smtp": {"host": "127.0.0.1", "port": inbox.port, "sender": "plantlink@test.local",
                                 "timeout": 5}, "targets": {"t": {"email": ["ops@test.local"]}}}, HIHI)
        await wait_until(lambda: len(inbox.messages) == 1, "the e-mail in the inbox")
        body = inbox.messages[0].get_payload()
    finally:
        inbox.stop()
    assert "Value:    300 (limit > 280)" in body
    assert f"Time:     {LOCAL}" in body


@pytest.mark.asyncio
async def test_a_webhook_carries_the_limit_and_the_sites_local_time() -> None:
    hook = WebhookReceiver().start()
    try:
        await _deliver({"targets": {"t": {"webhook": f"http://127.0.0.1:{hook.port}/alarms"}}}, HIHI)
        await wait_until(lambda: len(hook.received) == 1, "the webhook call")
        got = hook.received[0]["body"]
    finally:
        hook.stop()
    assert (got["limit"], got["limit_text"], got["value"]) == (280.0, "> 280", 300.0)
    assert (got["timezone"], got["local_time"]) == ("Europe/Berlin", LOCAL)
    assert got["ts_us"] == EVENT["ts_us"]  # the instant itself stays as it was


def test_the_engine_tells_listeners_the_limit() -> None:
    """The alarm engine's events (what the notifier receives) carry the definition's limit."""
    defn = AlarmDef(name="hihi", type="hihi", limit=280.0, priority="critical")
    assert defn.limit_text("°C") == "> 280 °C"
    assert AlarmDef(name="d", type="deviation", limit=5, setpoint="sp").limit_text("bar") == "|value - sp| > 5 bar"
    assert AlarmDef(name="c", type="comm").limit_text() == "bad quality"
    engine = AlarmEngine(None, None, compiled=_compiled(defn), now=lambda: 0)
    seen: list[Any] = []
    engine.add_listener(seen.append)
    engine._tell(0, "activate", "normal", "unack_active", 1, "system", 300.0)
    assert (seen[0].limit, seen[0].limit_text) == (280.0, "> 280")


def _compiled(defn: AlarmDef) -> Any:
    return compile_alarms([("s1/a/l/oven/temp", "s1", "s1/a/l/oven", defn, None)])


def _tag(**kw: Any) -> Tag:
    return Tag.model_validate({"name": "temp", "source": {"device": "d1", "address": "40001"}, **kw})


@pytest.mark.asyncio
async def test_a_notification_reads_in_words() -> None:
    """Words, not internals (issue 10, item 6): the tag's display name, the value with its unit symbol and the
    model's decimals, the limit with the unit, the alarm state as the HMI says it; a code tag's word."""
    inbox = SmtpInbox(_free_port()).start()
    smtp = {"smtp": {"host": "127.0.0.1", "port": inbox.port, "sender": "plantlink@test.local", "timeout": 5},
            "targets": {"t": {"email": ["ops@test.local"]}}}
    oven = _tag(display_name="Oven temperature", unit="degC", decimals=1)
    try:
        await _deliver(smtp, {**HIHI, "value": 300.04}, {EVENT["tag"]: oven})
        await wait_until(lambda: len(inbox.messages) == 1, "the e-mail in the inbox")
        mail = inbox.messages[0]
    finally:
        inbox.stop()
    body = mail.get_payload()
    assert "Value:    300.0 °C (limit > 280 °C)" in body
    assert "State:    Active, unacknowledged" in body.splitlines() and "unack_active" not in body
    assert f"Tag:      Oven temperature ({EVENT['tag']})" in body
    assert mail["Subject"] == "[CRITICAL] s1 Oven temperature: Oven far too hot"


def test_a_code_tag_reads_as_its_word() -> None:
    from plantlink.notify.notifier import words

    fault = _tag(name="fault_code", type="int", value_texts={0: "No fault", 7: "Guard door open"})
    got = words({"to_state": "unack_active", "value": 7.0, "limit": None, "limit_text": "= 7"}, fault)
    assert (got["value_text"], got["tag_label"], got["state_text"]) == ("Guard door open", "fault_code",
                                                                       "Active, unacknowledged")
    assert "limit_text" not in got  # a discrete alarm's limit has no unit to add
    assert words({"to_state": "shelved", "value": 3.0}, fault)["value_text"] == "code 3"  # a code without a word
