"""``Notifier.reload`` (a model applied while running): the new routes and targets are used for the next
alarm, and an escalation pending is planned again under the new rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantlink.model.notify import Notifications
from plantlink.notify import Notifier
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore
from tests.waiting import wait_for

T0 = 1_767_600_000_000_000
S = 1_000_000


def cfg(route_to: str, escalate_after: str | None = None) -> Notifications:
    doc: dict[str, Any] = {
        "targets": {"a": {"webhook": "http://127.0.0.1:1/a"}, "b": {"webhook": "http://127.0.0.1:1/b"}},
        "routes": [{"targets": [route_to]}]}
    if escalate_after:
        doc["escalation"] = [{"after": escalate_after, "targets": ["b"]}]
    return Notifications.model_validate(doc)


def event(key: str, ts: int) -> dict[str, Any]:
    return {"key": key, "site": "s1", "priority": "high", "from_state": "normal", "to_state": "unack_active",
            "ts_us": ts}


async def test_reload_routes_the_next_alarm_and_replans_escalations(tmp_path: Path) -> None:
    sent: list[tuple[str, str, str]] = []

    class Recorder:
        async def send(self, target: Any, n: dict[str, Any]) -> None:
            sent.append((target.webhook.rsplit("/", 1)[1], n["key"], n["reason"]))

    now = [T0]
    n = Notifier(cfg("a", "10m"), AlarmStore(Store.open(default_url(tmp_path)).engine), {"s1": "UTC"},
                 sender=Recorder(), now=lambda: now[0])
    n.start()
    try:
        n.on_event(event("k1", T0))
        await wait_for(lambda: ("a", "k1", "alarm") in sent, what="k1 routed to a")
        assert n._escalations["k1"][0][0] == T0 + 600 * S  # due in 10 minutes
        now[0] = T0 + 60 * S
        n.reload(cfg("b", "2m"), {"s1": "UTC"}, {})
        assert [due for due, _, _ in n._escalations["k1"]] == [T0 + 120 * S]  # the new rule, from the alarm's time
        n.on_event(event("k2", now[0]))
        await wait_for(lambda: ("b", "k2", "alarm") in sent, what="k2 routed to b")
        assert not [s for s in sent if s[1] == "k2" and s[0] == "a"]
        n.reload(cfg("b"), {"s1": "UTC"}, {})  # escalation removed: nothing pending
        assert "k1" not in n._escalations
    finally:
        await n.stop()
