"""Alarm notifications in the plant model (top-level ``notifications:``): where alarm e-mails and webhooks go.

Example::

    notifications:
      smtp: {host: mail.example.com, port: 587, starttls: true, sender: plantlink@example.com,
             username: plantlink, password_env: PLANTLINK_SMTP_PASSWORD}
      targets:
        maintenance: {email: [maint@example.com]}
        windsor-oncall-a: {email: [alice@example.com]}
        teams: {webhook: https://hooks.example.com/alarms, headers: {X-Key: abc}}
      routes:
        - {priorities: [critical, high], sites: [windsor], targets: [teams], on_call: true}
        - {priorities: [critical], targets: [maintenance]}
      on_call:
        - {site: windsor, name: days, days: [mon, tue, wed, thu, fri], start: "06:00", end: "18:00",
           targets: [windsor-oncall-a]}
      escalation:
        - {after: 10m, priorities: [critical], targets: [maintenance]}
      dedup_window: 5m
      rate_limit: {per_minute: 30}
      retry: {attempts: 5, initial: 2s, max: 5m}
"""

from __future__ import annotations

from datetime import time
from typing import Any

from pydantic import Field, field_validator, model_validator

from plantlink import plugins
from plantlink.model.alarms import Priority
from plantlink.model.production import Weekday, _clock
from plantlink.model.schema_base import Strict
from plantlink.model.types import Duration, Name, PositiveDuration

_ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Smtp(Strict):
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(min_length=3)
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    #: The name of the environment variable holding the SMTP password (never the password itself).
    password_env: str | None = None
    timeout: PositiveDuration = 10.0


class Target(Strict):
    """Where a notification goes: e-mail addresses, a webhook URL (a JSON POST), or a third-party channel
    (``notifier:`` the name of a ``plantlink.notifiers`` plugin, with its ``options``): exactly one of them."""

    email: list[str] = Field(default_factory=list)
    webhook: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    notifier: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        if [bool(self.email), self.webhook is not None, self.notifier is not None].count(True) != 1:
            raise ValueError("a target has either email: [addresses], webhook: URL or notifier: a plugin's name "
                             "(exactly one)")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"webhook must be an http(s) URL, got {self.webhook!r}")
        return self

    @property
    def kind(self) -> str:
        """The ``plantlink.notifiers`` plugin that delivers to this target."""
        if self.notifier is not None:
            return self.notifier
        return "webhook" if self.webhook is not None else "email"


class Route(Strict):
    """Send alarms of these priorities at these sites (empty list: all) to ``targets``, plus whoever is on
    call at the alarm's site when ``on_call`` is true."""

    priorities: list[Priority] = Field(default_factory=list)
    sites: list[Name] = Field(default_factory=list)
    targets: list[Name] = Field(default_factory=list)
    on_call: bool = False


class OnCall(Strict):
    """A duty period at a site: on ``days`` from ``start`` to ``end`` (site local time, may cross midnight)."""

    site: Name
    name: Name
    days: list[Weekday] = Field(default_factory=lambda: list(_ALL_DAYS))
    start: time
    end: time
    targets: list[Name] = Field(min_length=1)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> time:
        return _clock(value)


class Escalation(Strict):
    """Notify ``targets`` when an alarm of these priorities is still unacknowledged ``after`` its activation."""

    after: PositiveDuration
    priorities: list[Priority] = Field(default_factory=list)
    sites: list[Name] = Field(default_factory=list)
    targets: list[Name] = Field(min_length=1)


class RateLimit(Strict):
    per_minute: int = Field(default=30, ge=1)


class Retry(Strict):
    attempts: int = Field(default=5, ge=1, le=50)
    initial: PositiveDuration = 2.0
    max: PositiveDuration = 300.0


class Notifications(Strict):
    smtp: Smtp | None = None
    targets: dict[Name, Target] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    on_call: list[OnCall] = Field(default_factory=list)
    escalation: list[Escalation] = Field(default_factory=list)
    #: The same alarm is not sent twice to the same target within this window.
    dedup_window: Duration = Field(default=300.0, ge=0)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: Retry = Field(default_factory=Retry)

    @model_validator(mode="after")
    def _references(self) -> Notifications:
        problems = notification_problems(self)
        if problems:
            raise ValueError("; ".join(msg for _, msg in problems))
        return self


def notification_problems(n: Notifications, sites: list[str] | None = None) -> list[tuple[tuple[Any, ...], str]]:
    """Unknown targets, targets of a notifier that is not installed, e-mail targets without ``smtp``, unknown
    sites (when ``sites`` is given)."""
    out: list[tuple[tuple[Any, ...], str]] = []
    known = ", ".join(sorted(n.targets)) or "none declared"
    groups: list[tuple[str, list[Any]]] = [("routes", n.routes), ("on_call", n.on_call), ("escalation", n.escalation)]
    for section, items in groups:
        for i, item in enumerate(items):
            for name in item.targets:
                if name not in n.targets:
                    out.append(((section, i, "targets"), f"{section}[{i}]: unknown target {name!r} (targets: {known})"))
            item_sites = [item.site] if section == "on_call" else item.sites
            for s in item_sites if sites is not None else []:
                if s not in sites:  # type: ignore[operator]
                    out.append(((section, i), f"{section}[{i}]: unknown site {s!r}"))
    channels = plugins.names(plugins.NOTIFIERS)
    for name, t in n.targets.items():
        if t.kind not in channels:
            known_channels = ", ".join(channels) or "none installed"
            out.append((("targets", name, "notifier"), f"targets.{name}: unknown notifier plugin {t.kind!r} "
                        f"(known: {known_channels}) in entry-point group {plugins.NOTIFIERS}"))
    if n.smtp is None and any(t.kind == "email" for t in n.targets.values()):
        out.append((("smtp",), "e-mail targets need an smtp: server"))
    return out
