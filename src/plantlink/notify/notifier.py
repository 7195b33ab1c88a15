"""The notifier: alarm events in, e-mails and webhooks out, never blocking the alarm engine.

``on_event`` (an ``AlarmEngine`` listener) only puts the event on a bounded queue. A worker task routes it
(priority, site, on call), drops duplicates (same alarm and target within ``dedup_window``), enforces the
per-target rate limit, and starts one delivery task per target: retried with exponential back-off, each
attempt recorded in the store (``notify_deliveries``: pending -> sent | failed | rate_limited). A target
that is down only delays its own deliveries. Escalation: an alarm still unacknowledged ``after`` its
annunciation is sent to the escalation targets (an acknowledgement, shelving, suppression or removal from
service before then cancels it). Only annunciations (transitions into ``unack_active``) are notified, so a
shelved, suppressed or out-of-service alarm never notifies.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

from plantlink.display import alarm_state_text, unit_symbol, value_text
from plantlink.model.notify import Notifications, Target
from plantlink.model.schema import Tag
from plantlink.notify.routing import escalations, recipients
from plantlink.notify.senders import DeliveryError, Senders, local_time_text
from plantlink.samples import now_us
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.notify")

_ANNUNCIATE = "unack_active"
_CANCEL = frozenset({"ack_active", "normal", "shelved", "suppressed", "out_of_service"})


class Sender(Protocol):
    async def send(self, target: Target, n: dict[str, Any]) -> None: ...


class DeliveryLog(Protocol):
    """What the notifier needs of ``store.alarm_repo.AlarmStore``."""

    def add_delivery(self, alarm: str, site: str, target: str, kind: str, reason: str, now_us: int) -> int: ...

    def update_delivery(self, delivery_id: int, status: str, attempts: int, now_us: int,
                        error: str | None = None) -> None: ...


def words(n: Mapping[str, Any], tag: Tag | None) -> dict[str, str]:
    """What a notification says in words: the tag's display name, the value with its unit or the word of its code
    (``plantlink.display``), the alarm state."""
    out = {"state_text": alarm_state_text(str(n["to_state"]))}
    if tag is not None:
        out["tag_label"] = tag.label
        if n.get("value") is not None:
            out["value_text"] = value_text(n["value"], tag.unit, tag.type, decimals=tag.decimals,
                                           texts=tag.value_texts)
        if n.get("limit") is not None and n.get("limit_text") and unit_symbol(tag.unit):
            out["limit_text"] = f"{n['limit_text']} {unit_symbol(tag.unit)}"
    return out


class Notifier:
    def __init__(self, cfg: Notifications, store: DeliveryLog | None = None, timezones: Mapping[str, str] | None = None,
                 *, sender: Sender | None = None, now: Callable[[], int] = now_us, queue_size: int = 10_000,
                 per_target_concurrency: int = 4, escalation_check_s: float = 1.0,
                 tags: Mapping[str, Tag] | None = None):
        self.cfg = cfg
        #: tag path -> its model (display name, unit, decimals, value texts): messages read in words
        self.tags = dict(tags or {})
        self.store = store
        self.timezones = dict(timezones or {})
        self.sender: Sender = sender or Senders(cfg)
        self.now = now
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queue_size = queue_size
        self.concurrency = per_target_concurrency
        self.escalation_check_s = escalation_check_s
        self.stats = {"events": 0, "dropped": 0, "deduplicated": 0, "rate_limited": 0, "sent": 0, "failed": 0,
                      "retries": 0}
        self._last_sent: dict[tuple[str, str], int] = {}
        self._recent: dict[str, deque[int]] = {}
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._escalations: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}  # key -> [(due, rule, event)]
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []

    # -- input (called by the engine, in the event loop; never blocks) --------------------------------
    def on_event(self, e: Any) -> None:
        n = asdict(e) if not isinstance(e, dict) else dict(e)
        if n["to_state"] in _CANCEL:
            self._escalations.pop(n["key"], None)
        if n["to_state"] != _ANNUNCIATE or n["from_state"] == _ANNUNCIATE:
            return
        self.stats["events"] += 1
        n["timezone"] = self.timezones.get(n["site"], "UTC")
        n["local_time"] = local_time_text(n["ts_us"], n["timezone"])
        n.update(words(n, self.tags.get(str(n.get("tag", "")))))  # (an event without a tag: words of its state)
        if self.queue.qsize() >= self.queue_size:
            self.queue.get_nowait()
            self.stats["dropped"] += 1
        self.queue.put_nowait(n)

    def reload(self, cfg: Notifications, timezones: Mapping[str, str], tags: Mapping[str, Tag]) -> None:
        """Take the notification settings of a model applied while running: routes, targets, escalations,
        limits, and the tags' words. The escalations pending are planned again under the new rules (those
        not yet due); deduplication and rate-limit memory are kept."""
        if isinstance(self.sender, Senders) and cfg != self.cfg:
            self.sender = Senders(cfg)
        self.cfg, self.timezones, self.tags = cfg, dict(timezones), dict(tags)
        t = self.now()
        for key, pending in list(self._escalations.items()):
            n = pending[0][2]
            due = [(n["ts_us"] + round(r.after * 1e6), i, n) for i, r in escalations(cfg, n["priority"], n["site"])]
            keep = [d for d in due if d[0] > t]
            if keep:
                self._escalations[key] = keep
            else:
                del self._escalations[key]

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._worker()), asyncio.create_task(self._escalator())]

    async def stop(self, drain_s: float = 2.0) -> None:
        """Stop taking events; give deliveries in flight ``drain_s`` seconds, then cancel them."""
        await cancel_and_wait(self._workers, "notifier")
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        close = getattr(self.sender, "close", None)
        if close is not None:
            await close()

    def status(self) -> dict[str, Any]:
        """The counters (events, dropped for a full queue, deduplicated, rate limited, sent, failed, retries), what
        waits in the queue and the deliveries in flight (the health report shows them)."""
        return {**self.stats, "queued": self.queue.qsize(), "queue_size": self.queue_size,
                "in_flight": len(self._tasks)}

    async def idle(self) -> None:
        """Wait until the queue is empty and no delivery is running (for tests and clean shutdowns)."""
        while self.queue.qsize() or self._tasks:
            await asyncio.sleep(0.01)

    # -- routing --------------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            n = await self.queue.get()
            try:
                self._route(n)
            except Exception:
                log.exception("could not route the notification of %s", n.get("key"))

    def _route(self, n: dict[str, Any]) -> None:
        t = self.now()
        for name in recipients(self.cfg, n["priority"], n["site"], t, self.timezones):
            self._dispatch(name, n, "alarm", t)
        rules = escalations(self.cfg, n["priority"], n["site"])
        if rules:
            self._escalations[n["key"]] = [(n["ts_us"] + round(r.after * 1e6), i, n) for i, r in rules]

    def _dispatch(self, name: str, n: dict[str, Any], reason: str, t: int) -> None:
        window = round(self.cfg.dedup_window * 1e6)
        last = self._last_sent.get((n["key"], name + reason))
        if last is not None and t - last < window:
            self.stats["deduplicated"] += 1
            return
        recent = self._recent.setdefault(name, deque())
        while recent and recent[0] <= t - 60_000_000:
            recent.popleft()
        target = self.cfg.targets[name]
        if len(recent) >= self.cfg.rate_limit.per_minute:
            self.stats["rate_limited"] += 1
            self._spawn(self._record_only(name, target, n, reason, "rate_limited", t))
            return
        recent.append(t)
        self._last_sent[(n["key"], name + reason)] = t
        self._spawn(self._deliver(name, target, n | {"reason": reason}, reason))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- delivery -------------------------------------------------------------------------------------
    async def _log(self, fn: str, *args: Any) -> Any:
        if self.store is None:
            return None
        try:
            return await asyncio.to_thread(getattr(self.store, fn), *args)
        except Exception:
            log.exception("could not record a notification delivery")
            return None

    async def _record_only(self, name: str, target: Target, n: dict[str, Any], reason: str, status: str,
                           t: int) -> None:
        did = await self._log("add_delivery", n["key"], n["site"], name, target.kind, reason, t)
        if did is not None:
            await self._log("update_delivery", did, status, 0, t, "rate limit reached: not sent")

    async def _deliver(self, name: str, target: Target, n: dict[str, Any], reason: str) -> None:
        retry = self.cfg.retry
        did = await self._log("add_delivery", n["key"], n["site"], name, target.kind, reason, self.now())
        sem = self._sems.setdefault(name, asyncio.Semaphore(self.concurrency))
        error = ""
        for attempt in range(1, retry.attempts + 1):
            try:
                async with sem:
                    await self.sender.send(target, n)
            except (DeliveryError, Exception) as exc:  # any failure of a channel is retried
                error = str(exc) or type(exc).__name__
                log.warning("notification of %s to %s failed (attempt %d): %s", n["key"], name, attempt, error)
                if attempt < retry.attempts:
                    self.stats["retries"] += 1
                    if did is not None:
                        await self._log("update_delivery", did, "pending", attempt, self.now(), error)
                    await asyncio.sleep(min(retry.initial * 2 ** (attempt - 1), retry.max))
                continue
            if did is not None:
                await self._log("update_delivery", did, "sent", attempt, self.now(), None)
            self.stats["sent"] += 1  # counted once recorded, so a reader of the stats finds the record
            return
        if did is not None:
            await self._log("update_delivery", did, "failed", retry.attempts, self.now(), error)
        self.stats["failed"] += 1

    # -- escalation -----------------------------------------------------------------------------------
    async def _escalator(self) -> None:
        while True:
            await asyncio.sleep(self.escalation_check_s)
            try:
                self.escalate(self.now())
            except Exception:
                log.exception("escalation check failed")

    def escalate(self, t: int) -> int:
        """Send the escalations due at ``t``; returns how many rules fired."""
        fired = 0
        for key in list(self._escalations):
            keep = []
            for due, rule, n in self._escalations[key]:
                if due > t:
                    keep.append((due, rule, n))
                    continue
                fired += 1
                for name in self.cfg.escalation[rule].targets:
                    self._dispatch(name, n, "escalation", t)
            if keep:
                self._escalations[key] = keep
            else:
                del self._escalations[key]
        return fired
