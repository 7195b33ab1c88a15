"""Alarm notifications: e-mail (SMTP) and webhooks, routed by priority, site and on-call schedule."""

from plantlink.notify.notifier import Notifier
from plantlink.notify.routing import on_call, recipients
from plantlink.notify.senders import Channel, DeliveryError, EmailChannel, Senders, WebhookChannel

__all__ = ["Channel", "DeliveryError", "EmailChannel", "Notifier", "Senders", "WebhookChannel", "on_call", "recipients"]
