"""The edge's forwarder: batches from the disk queue to the central's broker, QoS 1, in order.

One paho-mqtt client per connection (a fresh session each time: what was in flight when the link broke is sent
again from the queue's cursor, never from paho's memory). Up to ``inflight`` batches are published and not yet
acknowledged by the broker. The queue's cursor moves only when **the central** says a batch is durable: its
stored floor (``{root}/{edge}/stored``, retained: every batch up to ``floor`` is in the central's log). A broker's
PUBACK is not enough: a broker that restarts (even cleanly: Mosquitto 2.0.11 loses what was in flight to the
central) or crashes loses batches it acknowledged, so after each reconnect the edge sends again from the central's
floor, and the central removes what it already had as duplicates. While connected, batches the broker took but
the central (heard from: its heartbeat ``{root}/_alive`` every few seconds) has not stored after ``resend_after``
are sent again too (a broker that dropped them, over its queue limit or because the central's session was gone);
the wait doubles after each resend that brought nothing, up to 10 minutes.

Status (``{root}/{edge}/status``, retained, QoS 1): the queue's figures every ``status_interval``, and
``{"online": false}`` as the last will and on a clean stop. Batches are sent only once the central's retained
session marker (``{root}/_central``) was seen on the connection: a broker acknowledges a message no session
subscribes to, and drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from plantlink.edge.payload import PathTable, stream_of
from plantlink.edge.queue import EdgeQueue
from plantlink.model.edge import EdgeSettings
from plantlink.tasks import cancel_and_wait
from plantlink.tlsprobe import connect_error

log = logging.getLogger("plantlink.edge.forward")

RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)
#: The central counts as alive while its heartbeat or a stored floor (``central.FLOOR_EVERY_S``) came this recently.
HEARD_S = 10.0
RESEND_MAX_S = 600.0


def batch_topic(root: str, edge: str) -> str:
    return f"{root}/{edge}/batch"


def status_topic(root: str, edge: str) -> str:
    return f"{root}/{edge}/status"


def stored_topic(root: str, edge: str) -> str:
    """Retained by the central: ``{"stream": edge@epoch, "floor": n}``, every batch up to n is durable there."""
    return f"{root}/{edge}/stored"


def alive_topic(root: str) -> str:
    """The central's heartbeat (QoS 0, every ``central.FLOOR_EVERY_S``): it runs and is subscribed."""
    return f"{root}/_alive"


def central_topic(root: str) -> str:
    """Retained by the central once its persistent session is subscribed: without it, a broker would
    acknowledge batches that no session keeps (they would be lost), so an edge forwards only once it saw it."""
    return f"{root}/_central"


class Forwarder:
    def __init__(self, settings: EdgeSettings, queue: EdgeQueue, paths: PathTable,
                 extra_status: Callable[[], dict[str, Any]] | None = None):
        self.settings = settings
        self.queue = queue
        self.paths = paths
        self.extra_status = extra_status or dict
        assert settings.central is not None, "the MQTT forwarder needs central: {mqtt: ...}"
        self.central = c = settings.central
        self.topic = batch_topic(c.root, settings.name)
        self.status_topic = status_topic(c.root, settings.name)
        self.central_topic = central_topic(c.root)
        self.stored_topic = stored_topic(c.root, settings.name)
        self.alive_topic = alive_topic(c.root)
        self._resend_wait = settings.resend_after  # doubles after a resend that brought nothing (to 10 min)
        #: the longest prefix of batches the broker acknowledged on this connection
        self.broker_seq = 0
        #: when the cursor last moved (or batches began to wait for the central), and the central was last heard
        self._progress_at = self._heard_at = 0.0
        #: the central's session marker was seen on this connection (batches are only sent then)
        self.central_seen = False
        #: the marker says ``"confirms": "central"``: a batch is delivered once the central's stored floor is over
        #: it (a plantlink central); otherwise once the broker acknowledged it (a broker that is itself durable,
        #: such as nats-server's MQTT gateway in front of JetStream: the marker is published by hand there)
        self.confirm_by_central = True
        self.connected = False
        self.connects = 0
        self.sent_batches = 0
        self.last_error: str | None = None
        self.resends = 0  # connections ended because the central did not store what the broker took
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: paho.Client | None = None
        self._lost = asyncio.Event()
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._order: deque[int] = deque()  # the seqs in flight, in order
        self._done: set[int] = set()  # seqs acknowledged out of order
        self._sent = 0  # the highest seq published on this connection
        self._stopping = False
        self._tls: ssl.SSLContext | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._tls = self.central.tls_context(f"edge {self.settings.name}")
        self._task = asyncio.create_task(self._run(), name="edge-forwarder")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await cancel_and_wait([self._task], "edge forwarder")
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                if self.connected:
                    client.publish(self.status_topic, json.dumps(self.status(online=False)), qos=1,
                                   retain=True).wait_for_publish(2)
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        self.connected = False

    # -- one connection after another ---------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                if await self._session():
                    await self._close_client()  # a resend: reconnect at once, sending from the central's floor
                    continue
                failures = 0
            except (OSError, paho.WebsocketConnectionError, TimeoutError) as exc:
                why = await connect_error(exc, self.central.host, self.central.port, self._tls)
                self.last_error = f"{type(exc).__name__}: {why}"
                failures += 1
            except Exception as exc:  # a bug must not stop forwarding: log it, reconnect, send from the cursor
                log.exception("edge %s: the forwarder failed; reconnecting", self.settings.name)
                self.last_error = f"{type(exc).__name__}: {exc}"
                failures += 1
            await self._close_client()
            if not self._stopping and (failures == 1 or failures % 30 == 0):
                log.warning("edge %s: central broker %s unreachable (%s); %d samples wait in the queue",
                            self.settings.name, self.central.mqtt, self.last_error, self.queue.backlog_rows)
            await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"plantlink-edge-{s.name}",
                             clean_session=True, reconnect_on_failure=False)
        if self.central.username:
            password = self.central.password.get_secret_value() if self.central.password else None
            client.username_pw_set(self.central.username, password)
        client.will_set(self.status_topic, json.dumps({"online": False, "edge": s.name}), qos=1, retain=True)
        client.max_inflight_messages_set(s.inflight)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        loop = asyncio.get_running_loop()

        def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._connected, rc)

        def on_disconnect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._disconnected, rc)

        def on_publish(_c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._puback, mid)

        def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
            handle = {self.stored_topic: self._stored, self.alive_topic: self._alive}.get(msg.topic,
                                                                                          self._central_marker)
            loop.call_soon_threadsafe(handle, bytes(msg.payload))

        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        client.on_publish, client.on_message = on_publish, on_message
        return client

    async def _session(self) -> bool:
        """One connection, until it is lost (False) or ended for a resend (True)."""
        c = self.central
        client = self._client = self._make_client()
        self._lost.clear()
        self._reset_window()
        await asyncio.to_thread(client.connect, c.host, c.port, c.keepalive)
        client.loop_start()
        await asyncio.wait_for(self._wait_connected(), 30)
        client.subscribe([(self.central_topic, 1), (self.stored_topic, 1), (self.alive_topic, 0)])
        next_status = 0.0
        while not self._lost.is_set() and not self._stopping:
            if self._stalled():
                return True
            if time.monotonic() >= next_status:
                self._publish_status(client)
                next_status = time.monotonic() + self.settings.status_interval
            self._fill_window(client)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.05, next_status - time.monotonic()))
        self.last_error = self.last_error or "connection lost"
        return False

    async def _wait_connected(self) -> None:
        while not self.connected:
            if self._lost.is_set():
                raise OSError(self.last_error or "connection refused")
            self._wake.clear()
            await self._wake.wait()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        self.connected = False
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    def _stored(self, payload: bytes) -> None:
        """The central's stored floor: move the queue's cursor (and delete what it confirmed)."""
        try:
            got = json.loads(payload) if payload else {}
            stream, floor = got["stream"], int(got["floor"])
        except (ValueError, TypeError, KeyError):
            log.warning("edge %s: the central's stored floor %r cannot be read: ignored", self.settings.name,
                        payload[:200])
            return
        if stream != stream_of(self.settings.name, self.queue.epoch):
            return  # an earlier queue of this edge (made anew since): not this one's numbers
        self._heard_at = time.monotonic()
        if self.queue.confirm(floor):
            self._progress_at = self._heard_at
            self._resend_wait = self.settings.resend_after
        self._wake.set()

    def _alive(self, _payload: bytes) -> None:
        self._heard_at = time.monotonic()

    def _stalled(self) -> bool:
        """The central is heard from, but batches the broker took wait for it longer than ``resend_after``: the
        broker lost them. End the connection: the next one sends again from the central's floor."""
        now, after = time.monotonic(), self._resend_wait
        heard = now - self._heard_at <= HEARD_S
        waiting = self.confirm_by_central and self.broker_seq > self.queue.acked_seq
        if not waiting or now - self._progress_at < after or not heard:
            return False
        self.last_error = (f"the central has not stored batches {self.queue.acked_seq + 1}..{self.broker_seq} "
                           f"{after:g} s after the broker took them: sending them again")
        log.warning("edge %s: %s", self.settings.name, self.last_error)
        self.resends += 1
        self._resend_wait = min(after * 2, RESEND_MAX_S)
        return True

    def _central_marker(self, payload: bytes) -> None:
        seen = bool(payload)
        try:
            marker = json.loads(payload) if seen else {}
        except ValueError:
            marker = {}
        by_central = isinstance(marker, dict) and marker.get("confirms") == "central"
        if seen and by_central != self.confirm_by_central:
            log.info("edge %s: batches count as delivered once %s", self.settings.name,
                     "the central says they are stored" if by_central else "the broker acknowledges them")
        self.confirm_by_central = by_central
        if seen and not self.central_seen:
            log.info("edge %s: the central's session is on the broker: forwarding", self.settings.name)
        elif not seen:
            log.warning("edge %s: no central session on the broker: holding the batches", self.settings.name)
        self.central_seen = seen
        self._wake.set()

    def _connected(self, rc: Any) -> None:
        if rc.is_failure:
            self.last_error = f"connection refused: {rc}"
            self._lost.set()
        else:
            self.connected = True
            self.connects += 1
            self.last_error = None
            log.info("edge %s: connected to %s; forwarding from batch %d", self.settings.name,
                     self.central.mqtt, self.queue.acked_seq + 1)
        self._wake.set()

    def _disconnected(self, rc: Any) -> None:
        self.connected = False
        self.last_error = f"disconnected: {rc}"
        self._lost.set()
        self._wake.set()

    # -- the window of batches in flight ------------------------------------------------------------------
    def _reset_window(self) -> None:
        self._inflight.clear()
        self._order.clear()
        self._done.clear()
        self._sent = self.broker_seq = self.queue.acked_seq
        self._progress_at = time.monotonic()
        self.central_seen = False

    def _fill_window(self, client: paho.Client) -> None:
        room = self.settings.inflight - len(self._order)
        if room <= 0 or not self.connected or not self.central_seen:
            return
        self._sent = max(self._sent, self.queue.acked_seq)  # drop_oldest may have moved the cursor past it
        for seq, batch in self.queue.read(self._sent, room):
            payload = self.paths.encode(self.settings.name, seq, batch, self.queue.epoch, self.queue.acked_seq)
            info = client.publish(self.topic, payload, qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self.last_error = f"publish failed: {paho.error_string(info.rc)}"
                self._lost.set()
                return
            self._inflight[info.mid] = seq
            self._order.append(seq)
            self._sent = seq
            self.sent_batches += 1

    def _puback(self, mid: int) -> None:
        got = self._inflight.pop(mid, None)
        if got is None:
            return  # a status message, or a batch of an earlier connection
        self._done.add(got)
        while self._order and self._order[0] in self._done:
            seq = self._order.popleft()
            self._done.discard(seq)
            if self.broker_seq <= self.queue.acked_seq:
                self._progress_at = time.monotonic()  # from now on, batches wait for the central
            self.broker_seq = max(self.broker_seq, seq)
        if not self.confirm_by_central:
            self.queue.confirm(self.broker_seq)
        self._wake.set()

    # -- status -------------------------------------------------------------------------------------------
    def status(self, online: bool = True) -> dict[str, Any]:
        return {"online": online, "edge": self.settings.name, "ts": time.time(), "connected": self.connected,
                "central_seen": self.central_seen, "broker_seq": self.broker_seq, "resends": self.resends,
                "alarm_at": self.settings.queue.alarm_at, "when_full": self.settings.queue.when_full,
                **self.queue.status(), **self.extra_status()}

    def _publish_status(self, client: paho.Client) -> None:
        client.publish(self.status_topic, json.dumps(self.status()), qos=1, retain=True)
