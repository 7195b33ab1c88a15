"""``plantlink ingest``: a worker that stores the samples stream in the historian (docs/scale-out.md).

Partitioning: one durable pull consumer per site (``ingest-<site>``, explicit acks, at most ``max_ack_pending``
messages out at once) and one lease per site (:mod:`plantlink.ingest.lease`). Only the site's lease owner
fetches from the site's consumer, so a site's messages (every Sparkplug node and edge of the site) are stored
and handed to its engines in stream order by one worker at a time; sites are spread over the live workers
(each takes at most ``ceil(sites / workers)``, gives up the extra ones when more workers come).

A fetch (up to ``max_ack_pending`` messages) is decoded, written to this worker's historian and flushed; only
then are its messages acknowledged. A worker that dies before acknowledging: JetStream redelivers the messages
``ack_wait`` after it fetched them, to the next owner of the site (which takes the lease ``ttl`` after the dead
owner's last renewal; ``ack_wait`` is below ``ttl / 2``, so the redeliveries are due first and the order holds).
A redelivered batch is not stored twice in one historian: it keeps one row per (tag, time).

NATS down: the connection retries (nats-py's reconnect, and the first connect with backoff here), fetches wait,
nothing is acknowledged that is not stored; the leases lapse after ``ttl / 2`` without a renewal and are taken
again once NATS is back. Health: :meth:`IngestWorker.status`, also written every second to
``ingest-status.json`` in the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from plantlink.edge.payload import decode
from plantlink.historian import Historian, TagMeta, historian_target, open_historian
from plantlink.ingest.engines import EngineHost
from plantlink.ingest.lease import Hook, Leases, _noop, open_bucket
from plantlink.ingest.stream import STREAM, ConsumerSettings, consumer_name, ensure_consumer, ensure_stream
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.ingest.worker")
#: After a fetch of a site is stored and flushed, before it is acknowledged: (site, its batches); may be async.
Stored = Callable[[str, Sequence[pa.RecordBatch]], "Awaitable[None] | None"]

STATUS_FILE = "ingest-status.json"
#: The edges' status messages: native (``edge: {nats: ...}``) and MQTT through nats-server (``{root}/{edge}/status``
#: with the root ``plantlink/samples/<site>``). Live only: not stored, not retained.
EDGE_STATUS_SUBJECTS = ("plantlink.status.*.*", "plantlink.samples.*.*.status")
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
FETCH_S = 1.0
EDGE_FIELDS = ("backlog_rows", "backlog_bytes", "fill", "queue_alarm", "dropped_rows", "produced_rows", "paused")


def _cancelled_meanwhile() -> None:
    """Raise CancelledError when this task was cancelled while an error was raised in it: Python 3.11's
    ``asyncio.wait_for`` (in nats-py's fetch) can turn a cancellation that meets its own timeout into a
    TimeoutError, and the site loop would go on forever after ``stop`` cancelled it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class IngestSettings:
    url: str = "nats://127.0.0.1:4222"
    worker: str = ""
    #: seconds a site's lease lasts without a renewal (the lease bucket's ttl when this worker creates it)
    lease_ttl: float = 30.0
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    #: where the samples go (``plantlink.historian.historian_target``): ``duckdb`` (this worker's own file in its
    #: data directory), or one historian all workers share: ``clickhouse://...`` (``chdb:///dir`` in one process)
    historian: str = "duckdb"
    #: options for the historian beyond what ``historian`` says (e.g. ``{"database": ...}``: tests)
    historian_options: dict[str, Any] = field(default_factory=dict)
    #: the relational store all workers share (``--store-url``): given, each site's owner runs the site's
    #: engines (machine states, downtime, alarms: :mod:`plantlink.ingest.engines`) and records them there
    store_url: str | None = None

    def __post_init__(self) -> None:
        if not self.worker:
            self.worker = f"{os.uname().nodename}-{os.getpid()}"
        if self.consumer.ack_wait >= self.lease_ttl / 2:
            raise ValueError(f"ack_wait ({self.consumer.ack_wait}s) must be below half the lease ttl "
                             f"({self.lease_ttl}s): a site's next owner must find its redeliveries due")


@dataclass
class SiteCounts:
    batches: int = 0
    rows: int = 0
    redelivered: int = 0
    invalid: int = 0
    unknown_rows: int = 0


class IngestWorker:
    def __init__(self, plant: Any, data_dir: str | Path, settings: IngestSettings,
                 on_acquire: Hook = _noop, on_release: Hook = _noop,
                 on_stored: Stored | None = None):
        self.plant, self.settings = plant, settings
        self.data_dir = Path(data_dir)
        self.sites = [s.name for s in plant.sites]
        self.on_acquire, self.on_release, self.on_stored = on_acquire, on_release, on_stored
        self.historian: Historian | None = None
        self.historian_where = ""
        self.store: Any = None
        self.engines: EngineHost | None = None
        self.tag_ids: dict[str, int] = {}
        self.counts = {s: SiteCounts() for s in self.sites}
        self.connected = False
        self.last_error: str | None = None
        self.disconnects = 0
        self.leases: Leases | None = None
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._loops: list[asyncio.Task[None]] = []  # one per site, started once NATS is set up
        self._give_up: set[str] = set()
        self._workers = 1  # live workers, counted by the lease loop every ttl/4
        #: edge name -> its last status message (online, backlog, fill, queue alarm...) and when it came
        self.edges: dict[str, dict[str, Any]] = {}

    # -- start and stop -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        backend, options, self.historian_where = historian_target(self.settings.historian, self.data_dir)
        self.historian = await asyncio.to_thread(open_historian, backend,
                                                 **{**options, **self.settings.historian_options})
        metas = [TagMeta(t.path, t.tag.unit, t.tag.type) for t in self.plant.all_tags]
        self.tag_ids = self.historian.register_tags(metas)
        if self.settings.store_url:
            from plantlink.store import Store

            self.store = await asyncio.to_thread(Store.open, self.settings.store_url)
            self.engines = EngineHost(self.plant, self.store, self.tag_ids,
                                      valid=lambda s: self.leases is not None and self.leases.valid(s),
                                      dead_letter=self.data_dir / "recorder-failed.jsonl")
        self._tasks = [asyncio.create_task(self._run(), name="ingest"),
                       asyncio.create_task(self._write_status(), name="ingest-status")]

    async def stop(self) -> None:
        # the site loops too, directly: a lease loop that swallowed a cancellation (Python 3.11's wait_for in
        # nats-py's requests) is cancelled again by cancel_and_wait, and must not be awaiting its loops then
        await cancel_and_wait([*self._tasks, *self._loops], f"ingest worker {self.settings.worker}")
        self._tasks, self._loops = [], []
        if self.leases is not None and self.connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.leases.release_all(), 5)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)
        self.connected = False
        if self.engines is not None:
            await self.engines.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None
        if self.historian is not None:
            await asyncio.to_thread(self.historian.close)
            self.historian = None
        self._dump_status()

    # -- the connection -----------------------------------------------------------------------------------
    async def _connect(self) -> None:
        import nats

        async def disconnected() -> None:
            self.connected = False
            self.disconnects += 1
            self.last_error = self.last_error or "disconnected"

        async def reconnected() -> None:
            self.connected, self.last_error = True, None
            log.info("ingest %s: reconnected to %s", self.settings.worker, self.settings.url)

        async def error(exc: Exception) -> None:
            self.last_error = f"{type(exc).__name__}: {exc}"

        failures = 0
        while True:
            try:
                self._nc = await nats.connect(self.settings.url, connect_timeout=2, max_reconnect_attempts=-1,
                                              reconnect_time_wait=0.5, disconnected_cb=disconnected,
                                              reconnected_cb=reconnected, error_cb=error,
                                              name=f"plantlink-ingest-{self.settings.worker}")
                break
            except Exception as exc:
                _cancelled_meanwhile()
                self.last_error = f"{type(exc).__name__}: {exc}"
                if failures % 30 == 0:
                    log.warning("ingest %s: NATS %s unreachable: %s", self.settings.worker, self.settings.url,
                                self.last_error)
                await asyncio.sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                failures += 1
        self.connected, self.last_error = True, None
        self._js = self._nc.jetstream()

    async def _setup(self) -> None:
        """The stream, the site consumers and the lease bucket, retried until NATS answers."""
        failures = 0
        while True:
            try:
                await ensure_stream(self._js)
                for site in self.sites:
                    await ensure_consumer(self._js, site, self.settings.consumer)
                for subject in EDGE_STATUS_SUBJECTS:
                    await self._nc.subscribe(subject, cb=self._edge_status)
                kv = await open_bucket(self._js, self.settings.lease_ttl)
                self.leases = Leases(kv, self.settings.worker, self.settings.lease_ttl, self._acquired,
                                     self._released, self._lost)
                return
            except Exception as exc:
                _cancelled_meanwhile()
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                failures += 1

    async def _run(self) -> None:
        await self._connect()
        await self._setup()
        self._loops = [asyncio.create_task(self._site_loop(s), name=f"ingest-{s}") for s in self.sites]
        try:
            await self._lease_loop()  # runs until stop() cancels it and the site loops
        except Exception:  # a bug: no site loop goes on without its leases renewed
            log.exception("ingest %s: the lease loop failed", self.settings.worker)
            await cancel_and_wait(self._loops, f"ingest worker {self.settings.worker}")
            raise

    # -- the lease hooks: the site's engines (with a store), then the caller's ---------------------------
    async def _acquired(self, site: str) -> None:
        if self.engines is not None:
            await self.engines.on_acquire(site)
        await self.on_acquire(site)

    async def _released(self, site: str) -> None:
        if self.engines is not None:
            await self.engines.on_release(site)
        await self.on_release(site)

    async def _lost(self, site: str) -> None:
        if self.engines is not None:
            await self.engines.on_lost(site)
        await self.on_release(site)

    # -- leases: renew, balance ---------------------------------------------------------------------------
    async def _lease_loop(self) -> None:
        assert self.leases is not None
        leases = self.leases
        while True:
            try:
                await leases.announce()
                await leases.renew()
                self._workers = workers = await leases.live_workers()
                target = math.ceil(len(self.sites) / workers)
                extra = len(leases.held) - len(self._give_up) - target
                for site in sorted(leases.held, reverse=True)[:max(0, extra)]:
                    self._give_up.add(site)
            except Exception as exc:
                _cancelled_meanwhile()
                self.last_error = f"{type(exc).__name__}: {exc}"
            await leases.expire_stale()
            await asyncio.sleep(self.settings.lease_ttl / 4)

    async def _want(self, site: str) -> bool:
        """Whether this worker may act for ``site`` now (it holds the lease, or took it)."""
        assert self.leases is not None
        leases = self.leases
        if site in self._give_up:
            self._give_up.discard(site)
            await leases.release(site)
            return False
        if leases.valid(site):
            return True
        if site in leases.held or not self.connected:
            return False
        if len(leases.held) >= math.ceil(len(self.sites) / self._workers):
            return False  # this worker's share (as the lease loop last counted the workers)
        return await leases.try_acquire(site)

    # -- one site ---------------------------------------------------------------------------------------
    async def _site_loop(self, site: str) -> None:
        sub: Any = None
        failures = 0
        while True:
            try:
                if not await self._want(site):
                    await asyncio.sleep(min(1.0, self.settings.lease_ttl / 8))
                    continue
                if sub is None:
                    sub = await self._js.pull_subscribe_bind(durable=consumer_name(site), stream=STREAM)
                msgs = await sub.fetch(self.settings.consumer.max_ack_pending, timeout=FETCH_S)
            except TimeoutError:
                _cancelled_meanwhile()
                continue  # nothing to fetch (nats.errors.TimeoutError is one too)
            except Exception as exc:
                _cancelled_meanwhile()
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                failures += 1
                continue
            failures = 0
            if self.leases is None or not self.leases.valid(site):
                continue  # the lease lapsed during the fetch: not stored, not acknowledged (redelivered)
            try:
                await self._store(site, msgs)
            except Exception as exc:  # the historian refused, an ack could not be sent, a hook failed: what is
                # not acknowledged is redelivered (and stored once: the historian keeps one row per (tag, time))
                log.exception("ingest %s: storing a fetch of site %s failed", self.settings.worker, site)
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(BACKOFF_S[2])

    async def _store(self, site: str, msgs: list[Any]) -> None:
        counts = self.counts[site]
        batches: list[pa.RecordBatch] = []
        for m in msgs:
            if m.metadata.num_delivered > 1:
                counts.redelivered += 1
            try:
                got = decode(m.data, self.tag_ids)
            except ValueError as exc:
                counts.invalid += 1
                log.error("ingest: a message on %s is not an edge batch (%s): dropped", m.subject, exc)
                continue
            counts.unknown_rows += got.unknown_rows
            if got.batch.num_rows:
                batches.append(got.batch)
        async with self._lock:
            await asyncio.to_thread(self._write, batches)
        counts.batches += len(msgs)
        counts.rows += sum(b.num_rows for b in batches)
        if self.engines is not None and batches:  # the site's engines see each batch before it is acknowledged
            await self.engines.on_stored(site, batches)
        if self.on_stored is not None and batches:
            done = self.on_stored(site, batches)
            if inspect.isawaitable(done):
                await done
        for m in msgs:  # stored and flushed: now, and only now, acknowledged
            await m.ack()
        with contextlib.suppress(Exception):
            await self._nc.flush(2)

    def _write(self, batches: list[pa.RecordBatch]) -> None:
        assert self.historian is not None
        for b in batches:
            self.historian.write(b)
        self.historian.flush()

    async def _edge_status(self, msg: Any) -> None:
        try:
            st = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(st, dict):
            edge = str(st.get("edge") or msg.subject.split(".")[-2 if msg.subject.endswith(".status") else -1])
            self.edges[edge] = {"last_seen": time.time(), "online": bool(st.get("online")),
                                **{k: st.get(k) for k in EDGE_FIELDS}}

    # -- health -------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        leases = self.leases
        held = set(leases.held) if leases else set()
        h = self.historian
        return {
            "worker": self.settings.worker,
            "nats": {"url": self.settings.url, "connected": self.connected, "last_error": self.last_error,
                     "disconnects": self.disconnects},
            "sites": {s: {"owned": s in held, **vars(c)} for s, c in self.counts.items()},
            "leases": {"acquired": leases.acquired if leases else 0, "lost": leases.lost if leases else 0},
            "historian": {"where": self.historian_where, "samples_stored": h.samples_stored,
                          "refused": h.refused} if h else None,
            "edges": dict(self.edges),
            "engines": self.engines.status() if self.engines is not None else None,
        }

    async def _write_status(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(self._dump_status)

    def _dump_status(self) -> None:
        path = self.data_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self.status()))
            os.replace(tmp, path)
