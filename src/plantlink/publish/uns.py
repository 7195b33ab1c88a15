"""The Unified Namespace publisher: every selected tag on ``[root/]enterprise/site/area/line/machine/tag`` with a
JSON payload ``{"value", "unit", "quality", "timestamp", "ts_ms"}``, retained (docs/mqtt.md, "Publishing").

It reads the bus (its consumer only coalesces a batch into the latest value per tag, vectorised: it never
waits for the broker) and a sender task publishes what is pending. The pending set holds at most one value
per tag: when the broker is slow or down, a newer value replaces the one not yet sent (counted in
``dropped``), which is what a last-value consumer needs. After a reconnect every tag's last value is
published again (a broker restarted without persistence has lost its retained messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import aiomqtt
except ImportError as exc:  # an install without the extra: say which one
    raise ImportError("publishing to MQTT needs aiomqtt: pip install 'plantlink[mqtt]'") from exc

from plantlink.bus import Bus, Subscription
from plantlink.model.publish import PublishSettings
from plantlink.publish.coalesce import LastValues, last_values
from plantlink.samples import Quality

log = logging.getLogger("plantlink.publish")

_TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_"})


@dataclass(frozen=True)
class Target:
    """A published tag: its id, path, topic, unit and type."""

    tag_id: int
    path: str
    topic: str
    unit: str
    type: str


@dataclass(frozen=True)
class Sample:
    """One tag's latest sample, as published."""

    ts_ms: int
    iso: str
    value: float | None
    quality: int
    text: str | None


def topic_of(root: str, enterprise: str, path: str) -> str:
    """The UNS topic of a tag: ``[root/]enterprise/site/area/line/machine/tag`` (MQTT wildcards and '/' in the
    enterprise name replaced by '_')."""
    parts = [root] if root else []
    return "/".join([*parts, enterprise.strip().translate(_TOPIC_UNSAFE), path])


def payload_of(target: Target, s: Sample) -> bytes:
    """The JSON payload: value by the tag's type (null when there is none), unit, quality name, timestamps."""
    value: Any
    if target.type == "string":
        value = s.text
    elif s.value is None or not math.isfinite(s.value):
        value = None
    elif target.type == "int":
        value = int(s.value)
    elif target.type == "bool":
        value = bool(s.value)
    else:
        value = s.value
    return json.dumps({"value": value, "unit": target.unit, "quality": Quality.name_of(s.quality),
                       "timestamp": s.iso, "ts_ms": s.ts_ms}, separators=(",", ":")).encode()


class UnsPublisher:
    """A runtime part (``name``, ``start``, ``stop``)."""

    name = "mqtt publisher"

    def __init__(self, settings: PublishSettings, targets: Sequence[Target], bus: Bus):
        self.settings = settings
        self.targets = {t.tag_id: t for t in targets}
        self.selected = np.array(sorted(self.targets), dtype=np.uint32)
        self.bus = bus
        self.published = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = False
        self.last_error: str | None = None
        self._pending: dict[int, Sample] = {}
        self._last: dict[int, Sample] = {}
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- the part -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._sub = self.bus.subscribe("mqtt publisher")
        self._tasks = [asyncio.create_task(self._consume(self._sub), name="uns:consume"),
                       asyncio.create_task(self._run(), name="uns:send")]

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.connected = False

    def status(self) -> dict[str, Any]:
        return {"broker": f"{self.settings.host}:{self.settings.port}", "connected": self.connected,
                "tags": len(self.targets), "published": self.published, "dropped": self.dropped,
                "pending": len(self._pending), "reconnects": self.reconnects, "last_error": self.last_error}

    # -- the bus side ---------------------------------------------------------------------------------------
    async def _consume(self, sub: Subscription) -> None:
        async for batch in sub:
            try:
                self.offer(last_values(batch, self.selected))
            except Exception:  # a bad batch must not stop publishing of the others
                log.exception("mqtt publisher: a batch of %d rows could not be read", batch.num_rows)

    def offer(self, lv: LastValues) -> None:
        """Make each tag's last value pending (replacing, and counting as dropped, one not sent yet)."""
        if not len(lv):
            return
        values = np.where(lv.has_value, lv.value, np.nan).tolist()
        for tid, ts, iso, v, q, text in zip(lv.tag_id.tolist(), lv.ts_ms.tolist(), lv.iso.tolist(), values,
                                            lv.quality.tolist(), lv.text, strict=True):
            if tid in self._pending:
                self.dropped += 1
            self._pending[tid] = Sample(ts, iso, None if v != v else v, q, text)
        self._wake.set()

    # -- the broker side ------------------------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(s.host, s.port, identifier=s.client_id or None, username=s.username,
                              password=None if s.password is None else s.password.get_secret_value(),
                              keepalive=s.keepalive, timeout=10.0, clean_session=True)

    async def _run(self) -> None:
        delay = self.settings.reconnect_min
        while True:
            try:
                async with self._client() as client:
                    self._connected_again()
                    delay = self.settings.reconnect_min
                    await _first_of(self._send_loop(client), _watch(client))
            except aiomqtt.MqttError as exc:
                if self.connected:
                    log.warning("mqtt publisher: lost %s: %s", self.settings.mqtt, exc)
                self.connected = False
                self.last_error = str(exc)
            except Exception as exc:  # a bug must not end publishing for good: log it, connect again
                log.exception("mqtt publisher: the session failed")
                self.connected = False
                self.last_error = str(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max)

    def _connected_again(self) -> None:
        """Every tag's last value is pending again (unless a newer one is), then sent."""
        if self._last:
            self.reconnects += 1
        for tid, sample in self._last.items():
            self._pending.setdefault(tid, sample)
        self.connected = True
        self.last_error = None
        self._wake.set()
        log.info("mqtt publisher: connected to %s", self.settings.mqtt)

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        uns = self.settings.uns
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            for i, (tid, sample) in enumerate(batch.items()):
                target = self.targets[tid]
                try:
                    await client.publish(target.topic, payload_of(target, sample), qos=uns.qos, retain=uns.retain)
                except aiomqtt.MqttError:
                    for rest_tid, rest in list(batch.items())[i:]:  # not sent: pending again, unless newer
                        self._pending.setdefault(rest_tid, rest)
                    raise
                self._last[tid] = sample
                self.published += 1


async def _watch(client: aiomqtt.Client) -> None:
    """Returns (raises) when the connection is lost: the sender may be waiting for data meanwhile."""
    async for _ in client.messages:
        pass
    raise aiomqtt.MqttError("the broker closed the connection")


async def _first_of(*coros: Coroutine[Any, Any, None]) -> None:
    """Run ``coros`` until the first ends; cancel the others; raise its exception, if any."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await t
    for t in done:
        t.result()


def targets_of(settings: PublishSettings, enterprise: str, tags: Sequence[tuple[int, str, str, str]]) -> list[Target]:
    """The published tags from ``(tag_id, path, unit, type)``: those ``include``/``exclude`` select."""
    root = settings.uns.root
    return [Target(tid, path, topic_of(root, enterprise, path), unit, typ)
            for tid, path, unit, typ in tags if settings.selects(path)]
