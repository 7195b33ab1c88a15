"""Delivery channels, one per target kind, each a ``plantlink.notifiers`` plugin: e-mail over SMTP (smtplib,
run in a worker thread) and webhooks (a JSON POST with httpx). A third-party channel is a factory
``(notifications) -> Channel`` registered under the kind its targets name (``notifier: <kind>``)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx

from plantlink import plugins
from plantlink.errors import PluginError
from plantlink.model.notify import Notifications, Smtp, Target


class DeliveryError(Exception):
    """A delivery attempt failed (the notifier retries it)."""


def subject(n: dict[str, Any]) -> str:
    what = n.get("message") or f"{n['event']} {n['key']}"
    prefix = "ESCALATION " if n.get("reason") == "escalation" else ""
    return f"{prefix}[{str(n['priority']).upper()}] {n['site']} {n.get('tag_label') or n['tag']}: {what}"


def local_time_text(ts_us: int, timezone: str) -> str:
    """An instant in a site's zone, with the zone's abbreviation and name: ``2026-03-02 01:00:00 CET
    (Europe/Berlin)``."""
    t = datetime.fromtimestamp(ts_us / 1e6, ZoneInfo(timezone))
    return f"{t:%Y-%m-%d %H:%M:%S} {t.tzname()} ({timezone})"


def body(n: dict[str, Any]) -> str:
    when = n.get("local_time") or local_time_text(n["ts_us"], n.get("timezone") or "UTC")
    state = n.get("state_text") or n["to_state"]
    lines = [f"Alarm:    {n['key']}", f"State:    {state}", f"Priority: {str(n['priority']).capitalize()}",
             f"Site:     {n['site']}", f"Machine:  {n['machine']}", f"Time:     {when}"]
    if n.get("tag_label"):
        lines.insert(1, f"Tag:      {n['tag_label']} ({n['tag']})")
    if n.get("value") is not None:
        limit = f" (limit {n['limit_text']})" if n.get("limit_text") else ""
        lines.append(f"Value:    {n.get('value_text') or format(n['value'], 'g')}{limit}")
    if n.get("message"):
        lines.append(f"Message:  {n['message']}")
    if n.get("response"):
        lines.append(f"Response: {n['response']}")
    return "\n".join(lines) + "\n"


def _send_email_sync(smtp: Smtp, to: list[str], n: dict[str, Any]) -> None:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject(n)
    msg.set_content(body(n))
    _deliver(smtp, msg)


def send_email_with_attachments(smtp: Smtp, to: Sequence[str], subject_text: str, text: str,
                                attachments: Sequence[tuple[str, bytes, str]]) -> None:
    """One e-mail (blocking: call it in a worker thread) with files attached: (file name, bytes, MIME type)."""
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject_text
    msg.set_content(text)
    for name, data, mime in attachments:
        main, _, sub = mime.split(";", 1)[0].strip().partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    _deliver(smtp, msg)


def _deliver(smtp: Smtp, msg: EmailMessage) -> None:
    cls = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    with cls(smtp.host, smtp.port, timeout=smtp.timeout) as s:
        if smtp.starttls and not smtp.ssl:
            s.starttls(context=ssl.create_default_context())
        if smtp.username:
            s.login(smtp.username, os.environ.get(smtp.password_env or "", ""))
        s.send_message(msg)


class Channel(Protocol):
    """One kind of delivery (a ``plantlink.notifiers`` plugin). ``send`` delivers one notification to one
    target or raises ``DeliveryError``: a failure is reported, never swallowed (the notifier retries it)."""

    async def send(self, target: Target, n: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


def _failed(exc: Exception) -> DeliveryError:
    return DeliveryError(f"{type(exc).__name__}: {exc}")


class EmailChannel:
    """E-mail over SMTP (``notifications.smtp``), smtplib in a worker thread. Entry point ``email``."""

    def __init__(self, cfg: Notifications):
        self.smtp = cfg.smtp

    async def send(self, target: Target, n: dict[str, Any]) -> None:
        if self.smtp is None:
            raise DeliveryError("no smtp server configured")
        if not target.email:
            raise DeliveryError("the target has no e-mail addresses")
        try:
            await asyncio.to_thread(_send_email_sync, self.smtp, list(target.email), n)
        except (OSError, smtplib.SMTPException) as exc:
            raise _failed(exc) from exc

    async def close(self) -> None:
        return None


class WebhookChannel:
    """A JSON POST of the notification to ``target.webhook`` (httpx); any answer but 2xx is a failure.
    Entry point ``webhook``."""

    def __init__(self, cfg: Notifications, timeout: float = 10.0):
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, target: Target, n: dict[str, Any]) -> None:
        if target.webhook is None:
            raise DeliveryError("the target has no webhook URL")
        try:
            r = await self.client.post(target.webhook, json=n, headers=target.headers)
        except httpx.HTTPError as exc:
            raise _failed(exc) from exc
        if r.status_code >= 300:
            raise DeliveryError(f"webhook answered HTTP {r.status_code}")

    async def close(self) -> None:
        await self.client.aclose()


class Senders:
    """Sends each notification through the channel of its target's kind, each channel a ``plantlink.notifiers``
    plugin created on first use. Tests and the bench may substitute their own ``send``."""

    def __init__(self, cfg: Notifications):
        self.cfg = cfg
        self._channels: dict[str, Channel] = {}

    def channel(self, kind: str) -> Channel:
        if kind not in self._channels:
            factory = plugins.load(plugins.NOTIFIERS, kind)
            self._channels[kind] = factory(self.cfg)
        return self._channels[kind]

    async def send(self, target: Target, n: dict[str, Any]) -> None:
        try:
            channel = self.channel(target.kind)
        except PluginError as exc:
            raise DeliveryError(str(exc)) from exc
        await channel.send(target, n)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for c in channels:
            await c.close()
