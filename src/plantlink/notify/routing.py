"""Who gets told: routes by priority and site, the on-call schedule, escalation rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from plantlink.model.notify import Escalation, Notifications, OnCall
from plantlink.model.production import WEEKDAYS


def _matches(items: list[str], value: str) -> bool:
    return not items or value in items


def on_duty(oc: OnCall, local: datetime) -> bool:
    """Whether ``local`` (the site's local time) falls in the duty period (which may cross midnight)."""
    t = local.time().replace(tzinfo=None)
    day = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local - timedelta(days=1)).weekday()]
    if oc.start < oc.end:
        return day in oc.days and oc.start <= t < oc.end
    if oc.start == oc.end:  # a whole day from start
        return (day in oc.days and t >= oc.start) or (yesterday in oc.days and t < oc.start)
    return (day in oc.days and t >= oc.start) or (yesterday in oc.days and t < oc.end)


def on_call(cfg: Notifications, site: str, now_us: int, timezones: Mapping[str, str]) -> list[str]:
    """The targets on call at ``site`` at ``now_us``."""
    tz = ZoneInfo(timezones.get(site, "UTC"))
    local = datetime.fromtimestamp(now_us / 1e6, UTC).astimezone(tz)
    out: list[str] = []
    for oc in cfg.on_call:
        if oc.site == site and on_duty(oc, local):
            out.extend(t for t in oc.targets if t not in out)
    return out


def recipients(cfg: Notifications, priority: str, site: str, now_us: int,
               timezones: Mapping[str, str]) -> list[str]:
    """Target names for a new alarm of ``priority`` at ``site``: every matching route's targets, plus whoever
    is on call there when the route says so. Each target once, in route order."""
    out: list[str] = []
    for r in cfg.routes:
        if not (_matches(list(r.priorities), priority) and _matches(list(r.sites), site)):
            continue
        names = list(r.targets) + (on_call(cfg, site, now_us, timezones) if r.on_call else [])
        out.extend(n for n in names if n not in out)
    return out


def escalations(cfg: Notifications, priority: str, site: str) -> list[tuple[int, Escalation]]:
    """(index, rule) of the escalation rules that apply to an alarm of ``priority`` at ``site``."""
    return [(i, e) for i, e in enumerate(cfg.escalation)
            if _matches(list(e.priorities), priority) and _matches(list(e.sites), site)]
