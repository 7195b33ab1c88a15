"""``NotifierContract``: what every ``plantlink.notifiers`` plugin (a delivery channel) must do
(``plantlink.notify.senders.Channel``).

A channel is loaded through the registry by its ``kind`` and created from the ``notifications:`` settings. The
subclass provides a real receiver on loopback (an SMTP server for e-mail, an HTTP server for webhooks, ...) as
the ``receiver`` fixture, and says how to address it and what it got::

    class TestSmsChannel(NotifierContract):
        kind = "sms"

        @pytest.fixture
        def receiver(self):
            server = FakeSmsGateway(port=0).start()
            yield server
            server.stop()

        def port(self, receiver):
            return receiver.port

        def settings(self, port):
            return {"targets": {"t": {"notifier": "sms", "options": {"url": f"http://127.0.0.1:{port}"}}}}

        def received(self, receiver):
            return [m.text for m in receiver.messages]

The suite checks: a notification arrives once, carrying the alarm's key, priority, site and tag; several
arrive each once; a receiver that is down makes ``send`` raise ``DeliveryError`` (a failure is reported, never
swallowed) in bounded time; the notifier (``plantlink.notify.Notifier``) routes to the channel and counts a
delivery as sent, or as failed after its retries; ``close`` is clean.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, ClassVar

import pytest

from plantlink import plugins
from plantlink.model.notify import Notifications
from plantlink.notify import Channel, DeliveryError, Notifier
from plantlink.testing.waiting import wait_until

#: The alarm annunciation the suite sends (what ``Notifier.on_event`` receives from the alarm engine).
EVENT: dict[str, Any] = {
    "key": "s1/a/l/oven/temp:hihi", "tag": "s1/a/l/oven/temp", "site": "s1", "machine": "s1/a/l/oven",
    "priority": "critical", "event": "activate", "from_state": "normal", "to_state": "unack_active",
    "ts_us": 1_772_409_600_000_000, "value": 300.0, "message": "Oven far too hot", "response": "Stop the burner",
}


def dead_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NotifierContract:
    """The notifier suite. Set ``kind``; provide the ``receiver`` fixture, ``port``, ``settings``, ``received``."""

    #: The plugin's name in ``plantlink.notifiers`` (what a target's ``kind`` is).
    kind: ClassVar[str] = ""

    def port(self, receiver: Any) -> int:
        """The loopback port ``receiver`` listens on."""
        raise NotImplementedError

    def settings(self, port: int) -> dict[str, Any]:
        """The ``notifications:`` mapping (without ``routes``) with a target ``t`` of this kind that delivers to
        127.0.0.1:``port`` (plus whatever else the channel needs, for e-mail ``smtp``)."""
        raise NotImplementedError

    def received(self, receiver: Any) -> list[str]:
        """The text of each notification ``receiver`` got so far, in arrival order (headers and body)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------------------------
    def config(self, port: int, **extra: Any) -> Notifications:
        cfg = Notifications.model_validate({**self.settings(port), "routes": [{"targets": ["t"]}], **extra})
        assert cfg.targets["t"].kind == self.kind, "settings() must give a target 't' of this kind"
        return cfg

    def channel(self, cfg: Notifications) -> Channel:
        channel: Channel = plugins.load(plugins.NOTIFIERS, self.kind)(cfg)  # as the notifier finds it
        return channel

    async def send(self, port: int, *events: dict[str, Any]) -> None:
        cfg = self.config(port)
        channel = self.channel(cfg)
        try:
            for e in events:
                await asyncio.wait_for(channel.send(cfg.targets["t"], e), 30)
        finally:
            await channel.close()

    # -- the contract -----------------------------------------------------------------------------------------
    @pytest.mark.asyncio
    async def test_a_notification_arrives_once_with_its_facts(self, receiver: Any) -> None:
        await self.send(self.port(receiver), EVENT)
        await wait_until(lambda: len(self.received(receiver)) >= 1, "the notification at the receiver")
        (text,) = self.received(receiver)
        for fact in ("key", "tag", "site", "priority", "message"):
            assert str(EVENT[fact]).lower() in text.lower(), f"the notification does not carry its {fact}"

    @pytest.mark.asyncio
    async def test_several_notifications_arrive_each_once(self, receiver: Any) -> None:
        events = [{**EVENT, "key": f"s1/a/l/oven/temp{i}:hihi", "tag": f"s1/a/l/oven/temp{i}"} for i in range(5)]
        await self.send(self.port(receiver), *events)
        await wait_until(lambda: len(self.received(receiver)) >= 5, "five notifications at the receiver")
        got = self.received(receiver)
        assert len(got) == 5
        for e in events:
            assert sum(e["key"] in text for text in got) == 1, e["key"]

    @pytest.mark.asyncio
    async def test_a_receiver_that_is_down_is_an_error_not_swallowed(self) -> None:
        with pytest.raises(DeliveryError):
            await self.send(dead_port(), EVENT)

    @pytest.mark.asyncio
    async def test_the_notifier_counts_sent_and_failed_deliveries(self, receiver: Any) -> None:
        fast = {"retry": {"attempts": 2, "initial": 0.01, "max": 0.02}}
        live = Notifier(self.config(self.port(receiver), **fast))
        dead = Notifier(self.config(dead_port(), **fast))
        for n in (live, dead):
            n.start()
            n.on_event(dict(EVENT))
        try:
            await wait_until(lambda: live.stats["sent"] == 1 and dead.stats["failed"] == 1,
                             "one delivery sent, one failed")
        finally:
            await live.stop()
            await dead.stop()
        assert (live.stats["failed"], dead.stats["sent"], dead.stats["retries"]) == (0, 0, 1)
        await wait_until(lambda: len(self.received(receiver)) >= 1, "the notification at the receiver")
        assert len(self.received(receiver)) == 1

    @pytest.mark.asyncio
    async def test_close_is_clean_used_or_not(self, receiver: Any) -> None:
        cfg = self.config(self.port(receiver))
        await self.channel(cfg).close()
        used = self.channel(cfg)
        await used.send(cfg.targets["t"], EVENT)
        await used.close()
        await wait_until(lambda: len(self.received(receiver)) >= 1, "the notification at the receiver")
