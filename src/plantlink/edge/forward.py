"""The edge's forwarder: batches from the disk queue to the central's broker, QoS 1, in order.

One paho-mqtt client per connection (a fresh session each time: what was in flight when the link broke is sent
again from the queue's cursor, never from paho's memory). Up to ``inflight`` batches are published and not yet
acknowledged; the queue's cursor advances over the longest acknowledged prefix (a PUBACK for batch n moves it
only once n-1 is acknowledged too). Status (``{root}/{edge}/status``, retained, QoS 1): the queue's figures
every ``status_interval``, and ``{"online": false}`` as the last will and on a clean stop. Batches are sent
only once the central's retained session marker (``{root}/_central``) was seen on the connection: a broker
acknowledges a message no session subscribes to, and drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from plantlink.edge.payload import PathTable
from plantlink.edge.queue import EdgeQueue
from plantlink.model.edge import EdgeSettings
from plantlink.tasks import cancel_and_wait
from plantlink.tlsprobe import connect_error

log = logging.getLogger("plantlink.edge.forward")

RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def batch_topic(root: str, edge: str) -> str:
    return f"{root}/{edge}/batch"


def status_topic(root: str, edge: str) -> str:
    return f"{root}/{edge}/status"


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
        #: the central's session marker was seen on this connection (batches are only sent then)
        self.central_seen = False
        self.connected = False
        self.connects = 0
        self.sent_batches = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: paho.Client | None = None
        self._lost = asyncio.Event()
        self._inflight: dict[int, tuple[int, int]] = {}  # mid -> (seq, rows)
        self._order: list[tuple[int, int]] = []  # (seq, rows) in flight, in order
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
                await self._session()
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
            if failures == 1 or failures % 30 == 0:
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
            loop.call_soon_threadsafe(self._central_marker, bytes(msg.payload))

        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        client.on_publish, client.on_message = on_publish, on_message
        return client

    async def _session(self) -> None:
        c = self.central
        client = self._client = self._make_client()
        self._lost.clear()
        self._reset_window()
        await asyncio.to_thread(client.connect, c.host, c.port, c.keepalive)
        client.loop_start()
        await asyncio.wait_for(self._wait_connected(), 30)
        client.subscribe(self.central_topic, 1)
        next_status = 0.0
        while not self._lost.is_set() and not self._stopping:
            if time.monotonic() >= next_status:
                self._publish_status(client)
                next_status = time.monotonic() + self.settings.status_interval
            self._fill_window(client)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.05, next_status - time.monotonic()))
        self.last_error = self.last_error or "connection lost"

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

    def _central_marker(self, payload: bytes) -> None:
        seen = bool(payload)
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
        self._sent = self.queue.acked_seq
        self.central_seen = False

    def _fill_window(self, client: paho.Client) -> None:
        room = self.settings.inflight - len(self._order)
        if room <= 0 or not self.connected or not self.central_seen:
            return
        self._sent = max(self._sent, self.queue.acked_seq)  # drop_oldest may have moved the cursor past it
        for seq, batch in self.queue.read(self._sent, room):
            payload = self.paths.encode(self.settings.name, seq, batch, self.queue.epoch)
            info = client.publish(self.topic, payload, qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self.last_error = f"publish failed: {paho.error_string(info.rc)}"
                self._lost.set()
                return
            self._inflight[info.mid] = (seq, batch.num_rows)
            self._order.append((seq, batch.num_rows))
            self._sent = seq
            self.sent_batches += 1

    def _puback(self, mid: int) -> None:
        got = self._inflight.pop(mid, None)
        if got is None:
            return  # a status message, or a batch of an earlier connection
        self._done.add(got[0])
        while self._order and self._order[0][0] in self._done:
            seq, rows = self._order.pop(0)
            self._done.discard(seq)
            self.queue.ack(seq, rows)
        self._wake.set()

    # -- status -------------------------------------------------------------------------------------------
    def status(self, online: bool = True) -> dict[str, Any]:
        return {"online": online, "edge": self.settings.name, "ts": time.time(), "connected": self.connected,
                "central_seen": self.central_seen,
                "alarm_at": self.settings.queue.alarm_at, "when_full": self.settings.queue.when_full,
                **self.queue.status(), **self.extra_status()}

    def _publish_status(self, client: paho.Client) -> None:
        client.publish(self.status_topic, json.dumps(self.status()), qos=1, retain=True)
