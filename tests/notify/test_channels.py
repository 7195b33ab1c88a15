"""The built-in notification channels pass the notifier contract suite (``plantlink.testing.notifier``) against
real receivers on loopback: e-mail to an aiosmtpd server, webhooks to an HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from plantlink.testing.notifier import NotifierContract
from tests.conftest import _free_port
from tests.servers import SmtpInbox, WebhookReceiver


class TestEmailChannel(NotifierContract):
    kind = "email"

    @pytest.fixture
    def receiver(self) -> Iterator[SmtpInbox]:
        inbox = SmtpInbox(_free_port()).start()
        yield inbox
        inbox.stop()

    def port(self, receiver: SmtpInbox) -> int:
        return receiver.port

    def settings(self, port: int) -> dict[str, Any]:
        return {"smtp": {"host": "127.0.0.1", "port": port, "sender": "plantlink@test.local", "timeout": 5},
                "targets": {"t": {"email": ["ops@test.local"]}}}

    def received(self, receiver: SmtpInbox) -> list[str]:
        return [m.as_string() for m in receiver.messages]


class TestWebhookChannel(NotifierContract):
    kind = "webhook"

    @pytest.fixture
    def receiver(self) -> Iterator[WebhookReceiver]:
        hook = WebhookReceiver().start()
        yield hook
        hook.stop()

    def port(self, receiver: WebhookReceiver) -> int:
        return receiver.port

    def settings(self, port: int) -> dict[str, Any]:
        return {"targets": {"t": {"webhook": f"http://127.0.0.1:{port}/alarms"}}}

    def received(self, receiver: WebhookReceiver) -> list[str]:
        return [json.dumps(r["body"]) for r in receiver.received]


async def test_a_webhook_answering_an_error_is_a_delivery_error() -> None:
    from plantlink.notify import DeliveryError
    from plantlink.testing.notifier import EVENT

    hook = WebhookReceiver(status=500).start()
    try:
        suite = TestWebhookChannel()
        with pytest.raises(DeliveryError, match="HTTP 500"):
            await suite.send(hook.port, EVENT)
    finally:
        hook.stop()
