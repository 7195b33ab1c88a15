"""Delivery: e-mail over SMTP (smtplib, run in a worker thread) and webhooks (a JSON POST with httpx)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx

from plantlink.model.notify import Smtp, Target


class DeliveryError(Exception):
    """A delivery attempt failed (the notifier retries it)."""


def subject(n: dict[str, Any]) -> str:
    what = n.get("message") or f"{n['event']} {n['key']}"
    prefix = "ESCALATION " if n.get("reason") == "escalation" else ""
    return f"{prefix}[{str(n['priority']).upper()}] {n['site']} {n['tag']}: {what}"


def body(n: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(n["ts_us"] / 1e6, UTC).isoformat()
    lines = [f"Alarm:    {n['key']}", f"State:    {n['to_state']} ({n['event']})", f"Priority: {n['priority']}",
             f"Site:     {n['site']}", f"Machine:  {n['machine']}", f"Time:     {when}"]
    if n.get("value") is not None:
        lines.append(f"Value:    {n['value']}")
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
    cls = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    with cls(smtp.host, smtp.port, timeout=smtp.timeout) as s:
        if smtp.starttls and not smtp.ssl:
            s.starttls(context=ssl.create_default_context())
        if smtp.username:
            s.login(smtp.username, os.environ.get(smtp.password_env or "", ""))
        s.send_message(msg)


class Senders:
    """The two delivery channels. Tests and the bench may substitute their own ``send``."""

    def __init__(self, smtp: Smtp | None, timeout: float = 10.0):
        self.smtp = smtp
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, target: Target, n: dict[str, Any]) -> None:
        try:
            if target.webhook is not None:
                r = await self.client.post(target.webhook, json=n, headers=target.headers)
                if r.status_code >= 300:
                    raise DeliveryError(f"webhook answered HTTP {r.status_code}")
                return
            if self.smtp is None:
                raise DeliveryError("no smtp server configured")
            await asyncio.to_thread(_send_email_sync, self.smtp, list(target.email), n)
        except DeliveryError:
            raise
        except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()
