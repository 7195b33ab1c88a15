"""Alarm notifications: e-mail (SMTP) and webhooks, routed by priority, site and on-call schedule."""

from plantlink.notify.notifier import Notifier
from plantlink.notify.routing import on_call, recipients
from plantlink.notify.senders import DeliveryError, Senders

__all__ = ["DeliveryError", "Notifier", "Senders", "on_call", "recipients"]
