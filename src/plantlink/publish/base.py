"""What both MQTT publishers share: the bus side (each batch coalesced to the last value per tag, vectorised,
into a pending set of at most one value per tag: a newer value replaces one not yet sent, counted in
``dropped``) and the broker side (connect, reconnect with backoff, a sender woken when values are pending, a
watcher that notices a lost connection and hands incoming messages to ``on_message``).

The bus consumer never waits for the broker, so the publisher never holds the bus back; last-value
semantics are what Unified Namespace and Sparkplug consumers need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from abc import ABC, abstractmethod
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
from plantlink.publish.commands import Command, CommandGate, Reply
from plantlink.tasks import cancel_and_wait
from plantlink.tlsprobe import connect_error

log = logging.getLogger("plantlink.publish")


@dataclass(frozen=True)
class Target:
    """A published tag: its id, path, UNS topic, unit and type."""

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
    value: float | None  # None: no (finite) value
    quality: int
    text: str | None


class Publisher(ABC):
    """A runtime part (``name``, ``start``, ``stop``, ``status``). Subclasses make the client and send."""

    name = "mqtt publisher"

    #: ``via`` of this publisher's commands in ``CommandGate`` counts.
    via = ""

    def __init__(self, settings: PublishSettings, targets: Sequence[Target], bus: Bus,
                 commands: CommandGate | None = None):
        self.settings = settings
        #: Writes asked over MQTT go there (None: refused without a trace, as with commands disabled).
        self.commands = commands
        self._command_tasks: set[asyncio.Task[None]] = set()
        #: Whether the message ``on_message`` is handling was a retained one.
        self.retained = False
        self.targets = {t.tag_id: t for t in targets}
        self.selected = np.array(sorted(self.targets), dtype=np.uint32)
        self.bus = bus
        #: Messages published, values dropped (replaced before they were sent), sessions after the first.
        self.published = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = False
        self.last_error: str | None = None
        self._pending: dict[int, Sample] = {}
        self._last: dict[int, Sample] = {}
        self._sessions = 0
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._client: aiomqtt.Client | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._tls: ssl.SSLContext | None = None

    # -- the part -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._tls = self.settings.tls_context(self.name)
        self._sub = self.bus.subscribe(self.name)
        self._tasks = [asyncio.create_task(self._consume(self._sub), name=f"{self.name}:bus"),
                       asyncio.create_task(self._run(), name=f"{self.name}:broker")]

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        client = self._client
        if client is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(self.before_disconnect(client), 5.0)
        self._stopping = True  # the reconnect loop ends even if it swallows a cancellation (see plantlink.tasks)
        await cancel_and_wait([*self._tasks, *self._command_tasks], self.name)
        self._tasks = []
        self.connected = False

    def status(self) -> dict[str, Any]:
        return {"broker": f"{self.settings.host}:{self.settings.port}", "tls": self.settings.secure,
                "connected": self.connected,
                "tags": len(self.targets), "published": self.published, "dropped": self.dropped,
                "pending": len(self._pending), "reconnects": self.reconnects, "last_error": self.last_error,
                "commands": self.commands.status(self.via) if self.commands is not None else {}}

    # -- commands -------------------------------------------------------------------------------------------
    def command(self, cmd: Command, client: aiomqtt.Client, reply_topic: str | None) -> None:
        """Run ``cmd`` through the gate in its own task (a write's read-back takes seconds: the session goes
        on); publish its reply on ``reply_topic`` unless ignored (commands off)."""
        gate = self.commands
        if gate is None:
            return
        if self.retained and cmd.problem is None:
            cmd = Command(cmd.via, cmd.topic, cmd.path, cmd.value, cmd.id,
                          problem="a retained command (it would run again at every reconnect): publish commands "
                                  "unretained")
        task = asyncio.create_task(self._command(gate, cmd, client, reply_topic), name=f"{self.name}:command")
        self._command_tasks.add(task)
        task.add_done_callback(self._command_tasks.discard)

    async def _command(self, gate: CommandGate, cmd: Command, client: aiomqtt.Client, reply_topic: str | None
                       ) -> None:
        reply: Reply = await gate.run(cmd)
        if reply_topic is None or reply.status == "ignored":
            return
        try:
            await client.publish(reply_topic, json.dumps(reply.to_dict(), separators=(",", ":")).encode(), qos=1)
        except aiomqtt.MqttError as exc:
            log.warning("%s: the reply to the command on %s was not published: %s", self.name, cmd.topic, exc)

    # -- the bus side ---------------------------------------------------------------------------------------
    async def _consume(self, sub: Subscription) -> None:
        async for batch in sub:
            try:
                self.offer(last_values(batch, self.selected))
            except Exception:  # a bad batch must not stop publishing of the others
                log.exception("%s: a batch of %d rows could not be read", self.name, batch.num_rows)

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

    def repend(self, items: dict[int, Sample]) -> None:
        """Values that could not be sent are pending again, unless a newer one is."""
        for tid, sample in items.items():
            self._pending.setdefault(tid, sample)

    # -- the broker side ------------------------------------------------------------------------------------
    def client_args(self) -> dict[str, Any]:
        s = self.settings
        return {"hostname": s.host, "port": s.port, "identifier": s.client_id or None, "username": s.username,
                "password": None if s.password is None else s.password.get_secret_value(),
                "keepalive": s.keepalive, "timeout": 10.0, "clean_session": True, "tls_context": self._tls}

    @abstractmethod
    def make_client(self) -> aiomqtt.Client:
        """A client for one session (a new one per connection: a will may change between sessions)."""

    @abstractmethod
    async def on_connect(self, client: aiomqtt.Client) -> None:
        """A session begins (subscribe, publish births, make last values pending again)."""

    @abstractmethod
    async def send(self, client: aiomqtt.Client, items: dict[int, Sample]) -> None:
        """Publish ``items``; on MqttError, ``repend`` what was not sent before raising."""

    async def on_message(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:  # noqa: B027
        """A message on a topic this publisher subscribed to."""

    async def before_disconnect(self, client: aiomqtt.Client) -> None:  # noqa: B027
        """A clean stop, while still connected."""

    async def _run(self) -> None:
        delay = self.settings.reconnect_min
        while not self._stopping:
            try:
                async with self.make_client() as client:
                    self._client = client
                    self._sessions += 1
                    self.reconnects = self._sessions - 1
                    await self.on_connect(client)
                    self.connected, self.last_error = True, None
                    self._wake.set()
                    log.info("%s: connected to %s", self.name, self.settings.mqtt)
                    delay = self.settings.reconnect_min
                    await _first_of(self._send_loop(client), self._watch(client))
            except aiomqtt.MqttError as exc:
                was, self.connected = self.connected, False
                if was:
                    log.warning("%s: lost %s: %s", self.name, self.settings.mqtt, exc)
                s = self.settings  # a failed connect: what TLS said, when it was TLS
                self.last_error = str(exc) if was else await connect_error(exc, s.host, s.port, self._tls)
            except Exception as exc:  # a bug must not end publishing for good: log it, connect again
                log.exception("%s: the session failed", self.name)
                self.connected, self.last_error = False, str(exc)
            self._client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            items, self._pending = self._pending, {}
            if items:
                await self.send(client, items)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Hands incoming messages on; raises when the connection is lost (the sender may be waiting)."""
        async for message in client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            self.retained = bool(message.retain)  # a retained command is refused: it would run at every reconnect
            await self.on_message(client, message.topic.value, data)
        raise aiomqtt.MqttError("the broker closed the connection")


async def _first_of(*coros: Coroutine[Any, Any, None]) -> None:
    """Run ``coros`` until the first ends; cancel the others; raise its exception, if any."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    done: set[asyncio.Task[None]] = set()
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(tasks, "publisher")
    for finished in done:
        finished.result()
