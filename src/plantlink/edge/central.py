"""The central's side: ``plantlink run`` with an ``edges:`` section stores the batches its edges forward.

A paho-mqtt client with a persistent session (``clean_session=False``, a fixed client id) subscribes QoS 1 to
``{root}/+/batch`` and ``{root}/+/status``: while the central is down the broker keeps the batches for it. Each
batch is acknowledged to the broker (manual PUBACK) only once it is durable: logged in the central's write-ahead
log (``Runtime.ingest(batch, then)``) and its sequence number recorded in the dedupe state
(``edges-state.json``, fsynced before the acknowledgements it covers). Then it tells the edge, end to end: the
retained ``{root}/{edge}/stored`` (``{"stream", "floor"}``: every batch up to ``floor`` is durable here), repeated
every ``FLOOR_EVERY_S``; the edge deletes a batch only then (a broker's PUBACK alone can be undone by a broker
restart). A batch's ``low`` mark (the edge holds nothing at or below it: a gap its full queue dropped) raises the
floor over that gap. A batch seen before (a resend after an
edge crash, a redelivery after a central crash) is acknowledged and not stored again. A crash between the log's
commit and the state's write: the log's replay at start names the batches it held (their edge and sequence
number travel in the logged batch's metadata), and they join the state before the receiver subscribes.

Health: each edge's last status (online, backlog, fill, dropped samples), when it was last seen, its last
sequence number, and the central's counts (batches, samples stored, duplicates, unknown tags).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pyarrow as pa
from paho.mqtt.enums import CallbackAPIVersion

from plantlink.edge.forward import alive_topic, central_topic, stored_topic
from plantlink.edge.payload import decode
from plantlink.model.edge import EdgesSettings
from plantlink.tasks import cancel_and_wait
from plantlink.tlsprobe import connect_error

log = logging.getLogger("plantlink.edge.central")

STATE_FILE = "edges-state.json"
ACK_EVERY_S = 0.02
#: How often the central repeats each edge's stored floor (the edges' sign that it is alive)
FLOOR_EVERY_S = 2.0
#: Sequence numbers kept above an edge's contiguous watermark (gaps: batches dropped at the edge); beyond, the
#: oldest are folded into the watermark.
MAX_ABOVE = 100_000
RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class SeqSet:
    """The sequence numbers of one edge already stored: all up to ``floor``, and those in ``above``."""

    def __init__(self, floor: int = 0, above: list[int] | None = None):
        self.floor = floor
        self.above = set(above or ())

    def __contains__(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.above

    def raise_floor(self, low: int) -> bool:
        """Every number up to ``low`` is done (the edge holds nothing there any more); True if the floor moved."""
        if low <= self.floor:
            return False
        self.floor = low
        self.above = {s for s in self.above if s > low}
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)
        return True

    def add(self, seq: int) -> None:
        self.above.add(seq)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)
        if len(self.above) > MAX_ABOVE:
            keep = sorted(self.above)
            self.floor = keep[len(keep) // 2]
            self.above = {s for s in keep if s > self.floor}

    def to_json(self) -> dict[str, Any]:
        return {"floor": self.floor, "above": sorted(self.above)}


class EdgeReceiver:
    def __init__(self, settings: EdgesSettings, data_dir: str | Path, tag_ids: Mapping[str, int],
                 ingest: Callable[[pa.RecordBatch, Callable[[], None]], bool],
                 recovered: Iterable[tuple[str, int]] = (),
                 alarm: Callable[[str, bool, float], None] | None = None):
        self.settings = settings
        self.state_path = Path(data_dir) / STATE_FILE
        self.tag_ids = tag_ids
        self.ingest = ingest
        root = settings.broker.root
        self.batch_filter, self.status_filter = f"{root}/+/batch", f"{root}/+/status"
        self.seen: dict[str, SeqSet] = {}
        #: (edge, seq) of the batches the write-ahead log replayed at start: durable before a crash, perhaps
        #: not yet in the dedupe state (the broker redelivers them: they are not stored twice)
        self.recovered = list(recovered)
        #: raises or clears an edge's "queue nearly full" alarm (edge, active, fill): the central's alarm engine
        self.alarm = alarm
        self.edges: dict[str, dict[str, Any]] = {name: {} for name in settings.expected}
        self.counts: dict[str, dict[str, int]] = {}
        self.connected = False
        self.last_error: str | None = None
        self.invalid = 0
        #: ingested, not yet durable: the messages' (session, mid)
        self._pending: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self._to_ack: list[tuple[int, int]] = []
        self._gen = 0  # the session a mid belongs to (a mid of an earlier session is never acknowledged)
        self._state_dirty = False
        self._told: dict[str, int] = {}  # stream -> the floor last published to its edge
        self._written: dict[str, int] = {}  # stream -> its floor in the state file (durable)
        self._latest: dict[str, str] = {}  # edge -> the stream (queue epoch) of its latest batch
        self._told_at = 0.0
        self._client: paho.Client | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lost = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tls: ssl.SSLContext | None = None

    # -- start and stop -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self._load_state()
        for edge, seq in self.recovered:
            self.seen.setdefault(edge, SeqSet()).add(seq)
        self._state_dirty = bool(self.recovered)
        self._loop = asyncio.get_running_loop()
        self._tls = self.settings.broker.tls_context("edges (central)")
        self._tasks = [asyncio.create_task(self._run(), name="edge-receiver"),
                       asyncio.create_task(self._acker(), name="edge-acker")]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, "edge central")
        await self._flush_acks()
        await self._close_client()

    # -- the connection -----------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except (OSError, TimeoutError) as exc:
                b = self.settings.broker
                self.last_error = f"{type(exc).__name__}: {await connect_error(exc, b.host, b.port, self._tls)}"
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("edges: broker %s unreachable: %s", self.settings.broker.mqtt, self.last_error)
            except Exception as exc:  # a bug must not stop the receiver: what is not acknowledged is redelivered
                log.exception("edges: the receiver failed; reconnecting")
                self.last_error = f"{type(exc).__name__}: {exc}"
                failures += 1
            await self._close_client()
            await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])

    async def _session(self) -> None:
        b = self.settings.broker
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.settings.client_id,
                             clean_session=False, manual_ack=True, reconnect_on_failure=False)
        if b.username:
            client.username_pw_set(b.username, b.password.get_secret_value() if b.password else None)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        loop = asyncio.get_running_loop()
        connected = asyncio.Event()
        self._lost.clear()

        def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            if rc.is_failure:
                self.last_error = f"connection refused: {rc}"
                loop.call_soon_threadsafe(self._lost.set)
                return
            client.subscribe([(self.batch_filter, 1), (self.status_filter, 1)])
            loop.call_soon_threadsafe(connected.set)

        def on_disconnect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._disconnected, rc)

        def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._message, msg)

        client.on_connect, client.on_disconnect, client.on_message = on_connect, on_disconnect, on_message
        self._client = client
        self._gen += 1
        await asyncio.to_thread(client.connect, b.host, b.port, b.keepalive)
        client.loop_start()
        await asyncio.wait_for(asyncio.wait([asyncio.ensure_future(connected.wait()),
                                             asyncio.ensure_future(self._lost.wait())],
                                            return_when=asyncio.FIRST_COMPLETED), 30)
        if not connected.is_set():
            raise OSError(self.last_error or "not connected")
        self.connected, self.last_error = True, None
        marker = json.dumps({"client_id": self.settings.client_id, "since": time.time(), "confirms": "central"})
        client.publish(central_topic(b.root), marker, qos=1, retain=True)  # the session exists: edges may send
        log.info("edges: subscribed to %s on %s", self.batch_filter, b.mqtt)
        await self._lost.wait()

    def _disconnected(self, rc: Any) -> None:
        self.connected = False
        self.last_error = f"disconnected: {rc}"
        self._lost.set()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        self.connected = False
        self._to_ack.clear()  # the broker redelivers what this session did not acknowledge
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    # -- messages -----------------------------------------------------------------------------------------
    def _message(self, msg: paho.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        edge, kind = parts[-2], parts[-1]
        if kind == "status":
            self._status(edge, bytes(msg.payload))
            self._to_ack.append((self._gen, msg.mid))
            return
        counts = self.counts.setdefault(edge, {"batches": 0, "rows": 0, "duplicates": 0, "unknown_rows": 0,
                                               "invalid": 0})
        try:
            got = decode(bytes(msg.payload), self.tag_ids)
        except ValueError as exc:
            counts["invalid"] += 1
            log.error("edges: a message on %s is not an edge batch (%s): acknowledged and dropped", msg.topic, exc)
            self._to_ack.append((self._gen, msg.mid))
            return
        info = self.edges.setdefault(got.edge, {})
        info["last_seen"] = time.time()
        info["last_seq"] = max(info.get("last_seq", 0), got.seq)
        key = (got.stream, got.seq)
        self._latest[got.edge] = got.stream
        seen = self.seen.setdefault(got.stream, SeqSet())
        if seen.raise_floor(got.low):
            self._state_dirty = True
        if got.seq in seen:
            counts["duplicates"] += 1
            self._to_ack.append((self._gen, msg.mid))
            return
        if key in self._pending:  # redelivered while the first copy is being logged
            counts["duplicates"] += 1
            self._pending[key].append((self._gen, msg.mid))
            return
        if got.unknown_rows:
            counts["unknown_rows"] += got.unknown_rows
            log.error("edges: %s sent %d samples of tags this model does not have (%s): not stored", got.edge,
                      got.unknown_rows, ", ".join(got.unknown[:5]))
        self._pending[key] = [(self._gen, msg.mid)]
        rows = got.batch.num_rows

        def durable() -> None:
            seen.add(got.seq)
            counts["batches"] += 1
            counts["rows"] += rows
            self._state_dirty = True
            self._to_ack.extend(self._pending.pop(key, []))

        if rows == 0:
            durable()
        elif not self.ingest(got.batch, durable):
            self._pending.pop(key, None)  # refused (the central's log is full): not acknowledged, redelivered
            self.last_error = "the write-ahead log refused a batch: it is redelivered after a reconnect"

    def _status(self, edge: str, payload: bytes) -> None:
        try:
            st = json.loads(payload)
        except ValueError:
            return
        if isinstance(st, dict):
            info = self.edges.setdefault(edge, {})
            info["status"] = st
            if self.alarm is not None and "queue_alarm" in st:
                try:
                    self.alarm(edge, bool(st["queue_alarm"]), float(st.get("fill") or 0.0))
                except Exception:
                    log.exception("edges: the queue alarm of %s could not be set", edge)
            info["last_seen"] = time.time() if st.get("online") else info.get("last_seen")

    # -- acknowledgements: after the dedupe state is on disk ----------------------------------------------
    async def _acker(self) -> None:
        while True:
            await asyncio.sleep(ACK_EVERY_S)
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        if not self._to_ack and not self._state_dirty:
            self._tell_floors()
            return
        mids, self._to_ack = self._to_ack, []
        client = self._client
        if self._state_dirty:
            self._state_dirty = False
            newest = set(self._latest.values())
            state = {e: {**s.to_json(), **({"newest": True} if e in newest else {})} for e, s in self.seen.items()}
            await asyncio.to_thread(self._write_state, state)
            self._written = {e: int(st["floor"]) for e, st in state.items()}
        if client is not None and client is self._client:
            for gen, mid in mids:
                if gen == self._gen:
                    client.ack(mid, 1)
        self._tell_floors()

    def _tell_floors(self) -> None:
        """Publish each edge's stored floor (retained) when it moved, and all of them every ``FLOOR_EVERY_S``:
        only what is in the state file (durable) is told."""
        client = self._client
        if client is None or not self.connected:
            return
        every = time.monotonic() - self._told_at >= FLOOR_EVERY_S
        root = self.settings.broker.root
        if every:
            self._told_at = time.monotonic()
            client.publish(alive_topic(root), json.dumps({"client_id": self.settings.client_id}), qos=0)
        for edge, stream in self._latest.items():
            floor = self._written.get(stream)  # the newest stream (queue epoch) of the edge, as durable
            if floor is not None and (every or self._told.get(stream) != floor):
                client.publish(stored_topic(root, edge), json.dumps({"stream": stream, "floor": floor}), qos=1,
                               retain=True)
                self._told[stream] = floor

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(state).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.state_path)

    def _load_state(self) -> None:
        try:
            raw = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("edges: %s cannot be read (%s): batches redelivered may be stored twice", self.state_path, exc)
            return
        for stream, st in raw.items():
            self.seen[stream] = SeqSet(int(st.get("floor", 0)), [int(s) for s in st.get("above", [])])
            self._written[stream] = self.seen[stream].floor
            if st.get("newest"):  # told from the start: an edge whose batches were stored before a crash, but
                self._latest[stream.split("@")[0]] = stream  # not yet confirmed, need not wait to resend them

    # -- health -------------------------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        """Per edge: online, last seen, last sequence, its queue (backlog, fill, dropped), the central's counts."""
        out: dict[str, dict[str, Any]] = {}
        for edge in sorted(set(self.edges) | set(self.counts)):
            info = self.edges.get(edge, {})
            st = info.get("status", {})
            last = info.get("last_seen")
            out[edge] = {
                "online": bool(st.get("online")), "broker_connected": self.connected,
                "last_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) if last else None,
                "last_seq": info.get("last_seq"),
                "stored_seq": max((s.floor for k, s in self.seen.items() if k.split("@")[0] == edge), default=0),
                "backlog_rows": st.get("backlog_rows"), "backlog_bytes": st.get("backlog_bytes"),
                "fill": st.get("fill"), "queue_alarm": bool(st.get("queue_alarm")),
                "dropped_rows": st.get("dropped_rows", 0), "produced_rows": st.get("produced_rows"),
                "paused": bool(st.get("paused")), "expected": edge in self.settings.expected,
                **self.counts.get(edge, {})}
        return out
