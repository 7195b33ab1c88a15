"""The MQTT connector: one broker connection (aiomqtt) feeding the plain-topic router and the Sparkplug B host
state machine, whose batches it emits and whose rebirth requests it publishes.

As a Sparkplug host it publishes ``spBv1.0/STATE/{host_id}`` = ``{"online": true, "timestamp": T}`` (retained,
QoS 1) once connected, with ``{"online": false, "timestamp": T}`` (same T) as its last will and on a clean stop.
While the broker is unreachable every point is bad; after a reconnect the host forgets every node (each must
be born again: edge nodes rebirth when they see the host's STATE online, and data before a birth asks for one).

Bad input (a payload that is not protobuf or JSON, a birth with unknown datatypes, a value that does not fit
its mapping, a topic outside the namespace) is counted in ``health.invalid_replies`` and logged with its topic
and reason at most once a minute per kind (with the count of the others), never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

try:
    import aiomqtt
except ImportError as exc:  # an install without the extra: say which one
    raise ImportError("the MQTT connector needs aiomqtt and protobuf: pip install 'plantlink[mqtt]'") from exc

from plantlink.connectors.base import BatchSink, Connector, DeviceState, Point
from plantlink.connectors.mqtt.autotags import BirthTags, NewTagsSink
from plantlink.connectors.mqtt.command import plain_payload, sparkplug_command
from plantlink.connectors.mqtt.config import MqttDevice, MqttPoint
from plantlink.connectors.mqtt.plain import PlainRouter, Route
from plantlink.connectors.mqtt.sparkplug.host import NAMESPACE, Issue, MetricInfo, Result, SparkplugHost
from plantlink.errors import DeviceUnavailable, PointError
from plantlink.model.tls import start_context
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.tasks import cancel_and_wait
from plantlink.tlsprobe import connect_error

log = logging.getLogger("plantlink.connectors.mqtt")

#: Seconds between two log lines of one kind of bad input for one device.
LOG_EVERY = 60.0
#: Kinds of issue that are bad input (counted in health.invalid_replies); the others are protocol events
#: (a sequence gap, data before a birth) that a rebirth request answers.
BAD_INPUT = frozenset({"malformed", "namespace", "datatype", "value"})
#: While messages are queued, the samples of consecutive messages are emitted as one batch of at most about
#: this many rows (one write-ahead-log append, one bus batch); the last queued message releases them at once.
HOLD_ROWS = 20_000


def state_payload(online: bool, ts_ms: int) -> bytes:
    """The Sparkplug 3.0 host STATE payload."""
    return json.dumps({"online": online, "timestamp": ts_ms}).encode()


class MqttConnector(Connector):
    protocol = "mqtt"

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        super().__init__(device_id, config, points, sink)
        assert isinstance(config, MqttDevice)
        self.cfg = config
        routes, bindings, text = _bind(self.points)
        self.plain = PlainRouter(routes)
        sp = config.sparkplug
        self.host = None if sp is None else SparkplugHost(sp.group, bindings, frozenset(text),
                                                          int(sp.rebirth_interval * 1e6))
        #: Tags from births (``sparkplug: {auto_tags: ...}``), once the runtime enables them.
        self.auto: BirthTags | None = None
        #: Rebirth requests published; writes published (commands: NCMD, DCMD or a plain write topic).
        self.rebirths = 0
        self.commands = 0
        self._sources = {p.tag_id: p.source for p in self.points}
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._state_ts = 0
        self._marked_bad = False
        self._stopping = False
        self._logged: dict[str, float] = {}
        #: Samples of messages handled while more were queued, emitted together (fewer, larger batches).
        self._held: list[pa.RecordBatch] = []
        self._held_rows = 0
        self._unlogged: dict[str, int] = {}
        self._tls: ssl.SSLContext | None = None

    def enable_auto_tags(self, on_new: NewTagsSink, existing: int) -> None:
        """Propose the unbound metrics of births as tags to ``on_new`` (when the device's ``auto_tags`` is set);
        ``existing``: the tags earlier births created (counted against ``max_tags``)."""
        sp = self.cfg.sparkplug
        if sp is None or sp.auto_tags is None or self.host is None:
            return
        auto = self.auto = BirthTags(self.device_id, sp.auto_tags, self.health, on_new, existing)
        host = self.host

        def on_birth(node: str, device: str | None, metrics: list[MetricInfo]) -> None:
            texts = set(host.text_tags)
            auto.on_birth(node, device, metrics, host.bindings, texts)
            host.text_tags = frozenset(texts)

        host.on_birth = on_birth
        auto.show()

    def rebind(self, points: Sequence[Point]) -> bool:
        """Take the model's new points without a new session (the stream goes on) when only Sparkplug metrics
        changed; False when the plain topics changed (the connector must restart)."""
        routes, bindings, text = _bind(points)
        running = [r for rs in self.plain.routes.values() for r in rs]
        if self.host is None or sorted(routes, key=_tag_id) != sorted(running, key=_tag_id):
            return False
        model = dict(bindings)
        if self.auto is not None:  # metrics still waiting for their tags stay bound to their provisional ids
            bindings.update({k: v for k, v in self.auto.pending.items() if k not in bindings})
            text |= self.auto.pending_texts
        self.host.rebind(bindings, frozenset(text))
        self.points = list(points)
        self._sources = {p.tag_id: p.source for p in self.points}
        self.guard.paths = {p.tag_id: p.path for p in self.points}
        if self.auto is not None:
            self._release()
            for batch in self.auto.rebound(model):
                self.emit(batch)
        return True

    def drop_auto_tags(self, keys: list[str], reason: str) -> None:
        """The tags proposed for the metrics ``keys`` were not created: unbind them (refused, counted)."""
        if self.auto is not None and self.host is not None:
            self.auto.failed(keys, reason, self.host.bindings)
            self.host.rebind(self.host.bindings, self.host.text_tags)

    @property
    def state_topic(self) -> str | None:
        return None if self.cfg.sparkplug is None else f"{NAMESPACE}/STATE/{self.cfg.sparkplug.host_id}"

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"mqtt:{self.device_id}")

    async def stop(self) -> None:
        client, topic = self._client, self.state_topic
        self._stopping = True  # our own offline STATE is not to be answered
        if client is not None and topic is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(client.publish(topic, state_payload(False, self._state_ts), qos=1,
                                                      retain=True), self.cfg.timeout)
        await cancel_and_wait([self._task], f"mqtt device {self.device_id}")
        self._task = None
        self.health.set_state(DeviceState.STOPPED)

    async def write(self, point: Point, value: Any) -> None:
        """Publish a write (the control path's only): a plain tag's ``write_topic``, or the NCMD/DCMD of a
        Sparkplug metric as its birth announced it. Sent is not applied: the device's next value tells."""
        src = self._sources.get(point.tag_id)
        if src is None:
            raise PointError(f"tag {point.path} is not a point of mqtt device {self.device_id}")
        assert isinstance(src, MqttPoint)
        where = f"mqtt device {self.device_id}, tag {point.path}"
        if not point.tag.writable:
            raise PointError(f"{where}: the tag is not writable (set writable: true in the plant model)")
        client = self._client
        if client is None or not self.health.ok:
            raise DeviceUnavailable(f"{where}: broker is {self.health.state.value}: {self.health.last_error}")
        try:
            if src.metric is not None:
                assert self.host is not None
                topic, payload = sparkplug_command(self.host, src.metric, value, time.time_ns() // 1_000_000)
                qos, retain = 0, False  # spec 3.0: NCMD and DCMD are QoS 0, not retained
            else:
                assert src.write_topic is not None
                topic, payload = src.write_topic, plain_payload(src, point.tag.type, value)
                qos, retain = src.write_qos, src.write_retain
        except ValueError as exc:  # the value does not fit the metric, or it is not born: said why
            raise PointError(f"{where}: {exc}") from None
        try:
            await asyncio.wait_for(client.publish(topic, payload, qos=qos, retain=retain), self.cfg.timeout)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise DeviceUnavailable(f"{where}: publishing on {topic} failed: {exc or 'timed out'}") from None
        self.commands += 1
        log.info("device %s: wrote %s on %s", self.device_id, point.path, topic)

    # -- the connection -------------------------------------------------------------------------------------
    def _make_client(self) -> aiomqtt.Client:
        cfg = self.cfg
        self._state_ts = time.time_ns() // 1_000_000
        topic = self.state_topic
        will = None if topic is None else aiomqtt.Will(topic, state_payload(False, self._state_ts), qos=1,
                                                       retain=True)
        return aiomqtt.Client(
            cfg.host, cfg.port, identifier=cfg.client_id or f"plantlink-{self.device_id}",
            username=cfg.username, password=None if cfg.password is None else cfg.password.get_secret_value(),
            keepalive=cfg.keepalive, timeout=cfg.timeout, will=will, clean_session=True, tls_context=self._tls)

    async def _run(self) -> None:
        delay = self.cfg.reconnect_min
        try:
            self._tls = start_context(self.cfg.tls, f"mqtt device {self.device_id}")
        except ValueError as exc:  # a file of tls: changed since the model was loaded
            self._down(f"broker {self.cfg.host}:{self.cfg.port}: {exc}")
            return
        while not self._stopping:  # a swallowed cancellation must not keep the loop going (plantlink.tasks)
            try:
                async with self._make_client() as client:
                    await self._session(client)
                    delay = self.cfg.reconnect_min
            except aiomqtt.MqttError as exc:
                self._client = None
                was = self.health.state == DeviceState.CONNECTED  # else a failed connect: what TLS said, if TLS
                why = str(exc) if was else await connect_error(exc, self.cfg.host, self.cfg.port, self._tls)
                self._down(f"broker {self.cfg.host}:{self.cfg.port}: {why}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.cfg.reconnect_max)

    async def _session(self, client: aiomqtt.Client) -> None:
        if self.host is not None:
            self.host.reset()
            assert self.state_topic is not None
            await client.subscribe(self.state_topic, qos=1)  # to re-assert online if anyone says otherwise
            await client.subscribe(f"{NAMESPACE}/{self.host.group}/#", qos=0)
            await client.publish(self.state_topic, state_payload(True, self._state_ts), qos=1, retain=True)
        for topic in self.plain.topics:
            await client.subscribe(topic, qos=1)
        self._client = client
        self._marked_bad = False
        self.health.set_state(DeviceState.CONNECTED)
        try:
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                await self._on_message(client, message.topic.value, data)
                if not len(client.messages) or self._held_rows >= HOLD_ROWS:
                    self._release()
        finally:
            self._release()
        raise aiomqtt.MqttError("the broker closed the connection")

    def _down(self, error: str) -> None:
        state = DeviceState.RECONNECTING if self.health.ok else DeviceState.DOWN
        self.health.set_state(state, error)
        if self.points and not self._marked_bad:  # once per outage, not at every retry
            self._marked_bad = True
            n = len(self.points)
            self.emit(numeric_batch([p.tag_id for p in self.points], now_us(), [0.0] * n, Quality.BAD,
                                    missing=np.ones(n, dtype=bool)))

    # -- one message ----------------------------------------------------------------------------------------
    async def _on_message(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        now = now_us()
        if topic == self.state_topic:
            await self._state_seen(client, topic, payload)
            return
        if self.host is not None and topic.startswith(self.host.prefix):
            result = self.host.handle(topic, payload, now)
        else:
            result = self.plain.handle(topic, payload, now)
        self._deliver(result)
        for rb in result.rebirths:
            self.rebirths += 1
            log.info("device %s: asked Sparkplug node %s for a rebirth: %s", self.device_id, rb.node, rb.reason)
            await client.publish(rb.topic, rb.payload, qos=0)

    async def _state_seen(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        """Sparkplug 3.0: a host that sees its STATE offline (an old will, another client) while connected
        publishes online again, at once."""
        try:
            online = json.loads(payload).get("online")
        except (ValueError, AttributeError):
            online = None
        if online is not True and not self._stopping:
            log.warning("device %s: %s said this host is offline (%r): publishing online again", self.device_id,
                        topic, payload[:80])
            await client.publish(topic, state_payload(True, self._state_ts), qos=1, retain=True)

    def _deliver(self, result: Result) -> None:
        for issue in result.issues:
            self._issue(issue)
        batch = result.batch
        if batch is not None and self.auto is not None:
            batch = self.auto.split(batch)  # the rows of metrics waiting for their tags are held there
        if batch is not None:
            self._held.append(batch)
            self._held_rows += batch.num_rows

    def _release(self) -> None:
        """Emit the samples of the messages handled since the last release as one batch (in their order)."""
        held, self._held, self._held_rows = self._held, [], 0
        if len(held) > 1:
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):  # not one schema: one by one
                held = [pa.concat_batches(held)]
        for batch in held:
            self.emit(batch)

    def _issue(self, issue: Issue) -> None:
        if issue.kind not in BAD_INPUT:
            return  # answered by the rebirth request, logged there
        self.health.invalid_replies += 1
        t = time.monotonic()
        last = self._logged.get(issue.kind)
        if last is not None and t - last < LOG_EVERY:
            self._unlogged[issue.kind] = self._unlogged.get(issue.kind, 0) + 1
            return
        self._logged[issue.kind] = t
        skipped = self._unlogged.pop(issue.kind, 0)
        more = f" ({skipped} more since the last report)" if skipped else ""
        log.warning("device %s: ignored a message on %s: %s%s", self.device_id, issue.topic, issue.reason, more)


def _tag_id(route: Route) -> int:
    return route.tag_id


def _bind(points: Sequence[Point]) -> tuple[list[Route], dict[str, int], set[int]]:
    """The plain-topic routes, the Sparkplug bindings (metric key -> tag id) and the text tags of ``points``."""
    routes, bindings, text = [], {}, set()
    for p in points:
        src = p.source
        assert isinstance(src, MqttPoint)
        if p.tag.type == "string":
            text.add(p.tag_id)
        if src.topic is not None:
            routes.append(Route(p.tag_id, src, p.tag.type == "string"))
        elif src.metric is not None:
            bindings[src.metric] = p.tag_id
    return routes, bindings, text
