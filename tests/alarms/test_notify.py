"""Notifications to real local servers: an e-mail received by aiosmtpd, a webhook received by an HTTP server,
a target that is down (retried with back-off, failure recorded) without blocking alarm processing, routing by
priority / site / on-call schedule, escalation, de-duplication and the rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plantlink.engines.alarms import AlarmEngine
from plantlink.identity import Principal
from plantlink.model.notify import Notifications
from plantlink.notify import Notifier, recipients
from plantlink.services.health import Health, HealthSources
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore
from tests.alarms.plants import GOOD, M2, T0, M, S, batch, plant, tag_ids
from tests.servers import SmtpInbox, WebhookReceiver
from tests.slow import MAX_LAG_S, Slow, lag_during
from tests.waiting import wait_for

# Monday 2026-01-05 08:00 UTC = 03:00 in Toronto
TZ = {"s1": "America/Toronto", "s2": "UTC"}


@pytest.fixture
def smtp(free_port: Callable[[], int]) -> Iterator[tuple[int, SmtpInbox]]:
    inbox = SmtpInbox(free_port()).start()
    yield inbox.port, inbox
    inbox.stop()


@pytest.fixture
def hook() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    receiver = WebhookReceiver().start()
    yield receiver.port, receiver.received
    receiver.stop()


def config(smtp_port: int, hook_port: int, dead_port: int, **extra: Any) -> Notifications:
    return Notifications.model_validate({
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "plantlink@test.local"},
        "targets": {
            "maint": {"email": ["maint@test.local"]},
            "teams": {"webhook": f"http://127.0.0.1:{hook_port}/alarms", "headers": {"X-Key": "k1"}},
            "down": {"webhook": f"http://127.0.0.1:{dead_port}/x"},
            "night": {"email": ["night@test.local"]},
        },
        "routes": [{"priorities": ["critical"], "targets": ["maint", "teams", "down"]},
                   {"sites": ["s1"], "priorities": ["high"], "targets": [], "on_call": True}],
        "on_call": [{"site": "s1", "name": "nights", "start": "22:00", "end": "06:00", "targets": ["night"]}],
        "retry": {"attempts": 3, "initial": 0.05, "max": 0.1},
        **extra,
    })


class Setup:
    def __init__(self, tmp: Path, cfg: Notifications, now: list[int]):
        self.store = AlarmStore(Store.open(default_url(tmp)).engine)
        self.plant = plant()
        self.ids = tag_ids(self.plant)
        self.eng = AlarmEngine(self.plant, self.store, now=lambda: now[0], tag_ids=self.ids)
        self.notifier = Notifier(cfg, self.store, TZ, now=lambda: now[0], escalation_check_s=0.02)
        self.eng.add_listener(self.notifier.on_event)
        self.eng.start(T0)


async def test_email_and_webhook_delivered_while_a_dead_target_is_retried(
        tmp_path: Path, smtp: tuple[int, SmtpInbox], hook: tuple[int, list[dict[str, Any]]],
        free_port: Callable[[], int]) -> None:
    now = [T0]
    s = Setup(tmp_path, config(smtp[0], hook[0], free_port()), now)
    s.notifier.start()
    t_feed = time.perf_counter()
    s.eng.feed(batch(s.ids, [(f"{M}/temp", T0, 300.0, GOOD)]))  # hihi (critical) and more
    assert time.perf_counter() - t_feed < 1.0  # feeding returned before any delivery could be attempted
    await wait_for(lambda: len(smtp[1].messages) == 1 and len(hook[1]) == 1)
    mail = smtp[1].messages[0]
    assert mail["To"] == "maint@test.local"
    assert subj(mail) == f"[CRITICAL] s1 {M}/temp: Oven far too hot"
    assert "Response: Stop the burner" in mail.get_payload()
    got = hook[1][0]
    assert got["key"] == "k1" and got["body"]["key"] == f"{M}/temp:hihi" and got["body"]["value"] == 300.0
    # meanwhile the alarm engine keeps working while "down" is retried
    s.eng.feed(batch(s.ids, [(f"{M}/temp", T0 + S, 100.0, GOOD)]))
    assert s.eng.state_of(f"{M}/temp:hihi") == "rtn_unack"
    await wait_for(lambda: s.notifier.stats["failed"] == 1)
    failed, total = s.store.deliveries(["failed"])
    assert total == 1 and failed[0].target == "down" and failed[0].attempts == 3
    assert "ConnectError" in (failed[0].last_error or "")
    sent, _ = s.store.deliveries(["sent"])
    assert sorted(d.target for d in sent) == ["maint", "teams"]
    await s.notifier.stop()


def subj(mail: Any) -> str:
    return " ".join(str(mail["Subject"]).split())  # unfold the header


async def test_on_call_escalation_and_dedup(tmp_path: Path, smtp: tuple[int, SmtpInbox],
                                                       free_port: Callable[[], int]) -> None:
    now = [T0]  # 03:00 in Toronto: the night on-call is on duty
    cfg = config(smtp[0], free_port(), free_port(), escalation=[{"after": "10m", "targets": ["maint"]}],
                 routes=[{"priorities": ["high"], "sites": ["s1"], "on_call": True}])
    s = Setup(tmp_path, cfg, now)
    s.notifier.start()
    temp = f"{M}/temp"
    # comm (high) activates after 5 s of bad quality -> night on-call
    s.eng.feed(batch(s.ids, [(temp, T0, 0.0, 0)]))
    s.eng.tick(T0 + 5 * S)
    await wait_for(lambda: len(smtp[1].messages) == 1)
    assert smtp[1].messages[0]["To"] == "night@test.local"
    # it clears and comes back within the dedup window: no second e-mail to the same target
    s.eng.feed(batch(s.ids, [(temp, T0 + 6 * S, 100.0, GOOD), (temp, T0 + 7 * S, 0.0, 0)]))
    s.eng.tick(T0 + 12 * S)
    await s.notifier.idle()
    assert s.notifier.stats["deduplicated"] == 1 and len(smtp[1].messages) == 1
    # unacknowledged 10 minutes after annunciation: escalated to maint; acknowledging hi cancels its own
    now[0] = T0 + 12 * S + 600 * S
    await wait_for(lambda: len(smtp[1].messages) == 2)
    assert smtp[1].messages[1]["To"] == "maint@test.local"
    assert subj(smtp[1].messages[1]).startswith("ESCALATION [HIGH]")
    await s.notifier.stop()


def test_routes_pick_targets_by_priority_site_and_duty() -> None:
    cfg = config(25, 1, 2)
    assert recipients(cfg, "critical", "s2", T0, TZ) == ["maint", "teams", "down"]
    assert recipients(cfg, "high", "s1", T0, TZ) == ["night"]  # 03:00 Toronto: nights 22:00-06:00
    assert recipients(cfg, "high", "s1", T0 + 6 * 3600 * S, TZ) == []  # 09:00 Toronto
    assert recipients(cfg, "high", "s2", T0, TZ) == []
    assert recipients(cfg, "low", "s1", T0, TZ) == []


def test_shelved_and_suppressed_alarms_never_reach_the_notifier(tmp_path: Path) -> None:
    now = [T0]
    cfg = config(25, 1, 2)

    class Spy(Notifier):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_event(self, e: Any) -> None:
            if e.to_state == "unack_active":
                self.seen.append(e.key)

    s = Setup(tmp_path, cfg, now)
    spy = Spy()
    s.eng.listeners = [spy.on_event]
    s.eng.shelve(f"{M2}/force:hi", T0 + 60 * S, "maintenance", "bob", T0)
    s.eng.feed(batch(s.ids, [(f"{M2}/force", T0 + S, 500.0, GOOD)]))
    assert spy.seen == []


def test_bad_notification_config_is_explained() -> None:
    with pytest.raises(ValueError, match="unknown target 'nobody'"):
        Notifications.model_validate({"targets": {}, "routes": [{"targets": ["nobody"]}]})
    with pytest.raises(ValueError, match="need an smtp"):
        Notifications.model_validate({"targets": {"a": {"email": ["a@b.c"]}}})
    with pytest.raises(ValueError, match="exactly one"):
        Notifications.model_validate({"targets": {"a": {}}})


async def test_rate_limit_per_target_is_recorded_not_sent(tmp_path: Path) -> None:
    sent: list[tuple[str, str]] = []

    class Recorder:
        async def send(self, target: Any, n: dict[str, Any]) -> None:
            sent.append((target.webhook, n["key"]))

    cfg = Notifications.model_validate({
        "targets": {"a": {"webhook": "http://127.0.0.1:1/a"}}, "routes": [{"targets": ["a"]}],
        "rate_limit": {"per_minute": 2}})
    store = AlarmStore(Store.open(default_url(tmp_path)).engine)
    now = [T0]
    n = Notifier(cfg, store, TZ, sender=Recorder(), now=lambda: now[0])
    n.start()
    for i in range(4):
        n.on_event({"key": f"k{i}", "site": "s1", "priority": "low", "from_state": "normal",
                    "to_state": "unack_active", "ts_us": T0})
    await wait_for(lambda: n.stats["rate_limited"] == 2)
    await n.idle()
    assert sorted(k for _, k in sent) == ["k0", "k1"]  # the first two, delivered concurrently
    limited, total = store.deliveries(["rate_limited"])
    assert total == 2 and {d.alarm for d in limited} == {"k2", "k3"}
    now[0] += 61 * S  # a minute later the target takes notifications again
    n.on_event({"key": "k9", "site": "s1", "priority": "low", "from_state": "normal", "to_state": "unack_active",
                "ts_us": now[0]})
    await wait_for(lambda: len(sent) == 3)
    await n.stop()


async def test_a_slow_delivery_log_does_not_stall_the_loop_and_the_counters_show_in_health(
        tmp_path: Path, hook: tuple[int, list[dict[str, Any]]]) -> None:
    now = [T0]
    cfg = Notifications.model_validate({
        "targets": {"teams": {"webhook": f"http://127.0.0.1:{hook[0]}/alarms"}},
        "routes": [{"priorities": ["critical"], "targets": ["teams"]}]})
    s = Setup(tmp_path, cfg, now)
    slow = Slow(s.store, "add_delivery", "update_delivery")
    s.notifier.store = slow  # type: ignore[assignment]
    s.notifier.start()
    try:
        s.eng.feed(batch(s.ids, [(f"{M}/temp", T0, 300.0, GOOD)]))  # hihi (critical)
        _, lag = await lag_during(wait_for(lambda: s.notifier.status()["sent"] == 1, what="sent and recorded"))
        assert len(hook[1]) == 1 and slow.calls == ["add_delivery", "update_delivery"]
        assert lag < MAX_LAG_S, f"the event loop stalled {lag:.2f} s during a slow delivery record"
        status = s.notifier.status()
        assert status["queued"] == 0 and status["in_flight"] == 0 and status["dropped"] == 0
        report = Health(["s1"], {}, HealthSources(notifier=s.notifier.status)).report(Principal("v", {"s1": "viewer"}))
        assert report.notifier == status and report.status == "ok"
    finally:
        await s.notifier.stop()
