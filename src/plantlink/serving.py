"""``Serving``: the API and HMI of a plant without its write side (``plantlink serve``, API replicas).

Where ``Runtime`` runs connectors, engines, the historian writer and the API in one process, ``Serving`` opens
only what answers requests: the relational store (users, sessions, login throttle, audit, states, downtime,
trend notes: shared by every process on one store) and the historian, read-only where the backend has such a
mode (DuckDB: a file no process writes; ClickHouse: a server every replica reads). No connector, no engine, no
historian writer, no write-ahead log. So several ``plantlink serve`` processes on one store and one historian
answer alike, behind any load balancer (docs/scale-out.md, "API replicas").

What needs a live engine is not running here and its routes answer 503 ``unavailable`` with the part named
(``plantlink.api.services.running``): alarm actions and alarm performance (the alarm engine; the alarms now, the
journal and failed notifications are read from the store), downtime reason assignment, control
(stage / confirm need the connectors: they run in ``plantlink run``), anomaly detection and remaining life,
plan / apply of the model.

Live values: the latest values are seeded from the historian and then polled from it every ``poll_interval``
seconds (``LatestPoller``); what changed is published on an in-process bus, where the latest-value cache, the
live WebSocket stream and the HMI take it as in ``plantlink run``. The live stream of a replica therefore lags
the historian's latest values by at most ``poll_interval`` (plus the writer's flush interval). Machine states
now are the open intervals the state engine keeps in the store, and the alarms now the states the alarm engine
saves there, read as often (``plantlink.serving_states``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.audit import AuditLog
from plantlink.bus import Bus, open_bus
from plantlink.historian import Historian, historian_target, open_historian
from plantlink.lifecycle import Lifecycle, Part
from plantlink.model import Plant
from plantlink.samples import conform
from plantlink.services import Components, Services
from plantlink.services.health import HealthSources
from plantlink.services.latest import LatestValues
from plantlink.serving_states import AlarmMirror, Periodic, StoredStates
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore

log = logging.getLogger("plantlink.serving")


def serving_tag_ids(plant: Plant, known: pa.Table) -> dict[str, int]:
    """The model's tag ids as the historian keeps them (``tags()``: path, tag_id); a tag the historian does not
    know yet (never written) gets an id above every known one, in model order, as ``register_tags`` gives them:
    it has no history until a writer registers it."""
    ids = {str(p): int(i) for p, i in zip(known.column("path").to_pylist(), known.column("tag_id").to_pylist(),
                                          strict=True)}
    out: dict[str, int] = {}
    next_id = max(ids.values(), default=0) + 1
    for t in plant.all_tags:
        if t.path in ids:
            out[t.path] = ids[t.path]
        elif t.path not in out:
            out[t.path], next_id = next_id, next_id + 1
    missing = [p for p in out if p not in ids]
    if missing:
        log.warning("%d tags of the model are not in the historian yet (no history): %s", len(missing),
                    ", ".join(missing[:5]))
    return out


class LatestPoller(Periodic):
    """Every ``interval`` seconds, the historian's latest values of ``ids``; the rows newer than the cache's go
    on ``bus`` (the latest-value cache and the live stream take them from there)."""

    name = "latest-poller"
    failing = "latest values: the historian did not answer"  # the last values are kept; the next poll retries

    def __init__(self, historian: Historian, latest: LatestValues, bus: Bus, ids: list[int], interval: float):
        super().__init__(interval)
        self.historian, self.latest, self.bus, self.ids = historian, latest, bus, ids
        self.polls = self.published = 0

    async def tick(self) -> None:
        await self.poll()

    async def poll(self) -> int:
        """One poll: publish what is newer than the cache; returns the rows published."""
        if not self.ids:
            return 0
        now = await asyncio.to_thread(self.historian.latest, self.ids)
        self.polls += 1
        now = now.filter(pc.is_valid(now.column("ts")))
        if now.num_rows == 0:
            return 0
        have = self.latest.table(now.column("tag_id").to_numpy(zero_copy_only=False).astype(np.int64))
        old = have.column("ts").cast(pa.int64()).fill_null(-1).to_numpy()
        new = now.column("ts").cast(pa.int64()).to_numpy()
        rows = np.flatnonzero(new > old)
        if rows.size == 0:
            return 0
        batch = conform(now.take(pa.array(rows)).combine_chunks().to_batches()[0])
        self.bus.publish(batch)
        self.published += int(rows.size)
        return int(rows.size)

    def status(self) -> dict[str, Any]:
        return {"polls": self.polls, "published": self.published, "errors": self.errors,
                "last_error": self.last_error, "interval_s": self.interval}


class Serving:
    """The API's services over a shared store and historian, without connectors, engines or a writer. Duck-typed
    as the runtime for ``plantlink.api.server.serve`` and the HMI: ``plant``, ``data_dir``, ``store``,
    ``services``."""

    def __init__(self, plant: Plant, data_dir: str | Path, *, historian: str | None = None,
                 store_url: str | None = None, poll_interval: float = 1.0):
        self.plant = plant
        self.data_dir = Path(data_dir)
        self.historian_backend, self._historian_options, self.historian_where = historian_target(
            historian or plant.spec.historian or "duckdb", self.data_dir)
        if self.historian_backend == "duckdb":  # one writer process per file: replicas only read it
            self._historian_options["read_only"] = True
        self.store_url = store_url or default_url(self.data_dir)
        self.poll_interval = poll_interval
        self.bus: Bus = open_bus("inproc")
        self.latest = LatestValues()
        self.store: Store | None = None
        self.historian: Historian | None = None
        self.audit: AuditLog | None = None
        #: the alarm journal and deliveries that ``plantlink run``'s alarm engine writes (read here)
        self.alarm_records: AlarmStore | None = None
        self.poller: LatestPoller | None = None
        #: machine states now, as the store's open intervals show them (``plantlink.serving_states``)
        self.alarm_mirror = AlarmMirror(plant, lambda: self.alarm_records)
        self.states = StoredStates(lambda: self.store, poll_interval, also=self.alarm_mirror.read)
        self.services: Services | None = None
        self.tag_ids: dict[str, int] = {}
        self.started_at: float | None = None
        #: No connectors here (``plantlink run`` has them); the connection budget and health read this.
        self.connectors: dict[str, Any] = {}
        self._life = Lifecycle()

    async def start(self) -> None:
        """Open the store and the historian, seed and start the latest values, build the services."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        life = self._life
        await life.start(Part("store", self._open_store, self._close_store, blocking=True),
                         Part("historian", self._open_historian, self._close_historian, blocking=True))
        await life.start(Part("machine states", self.states.start, self.states.stop),
                         Part("latest values", self._start_latest, self.latest.stop))
        assert self.historian is not None
        self.poller = LatestPoller(self.historian, self.latest, self.bus, sorted(set(self.tag_ids.values())),
                                   self.poll_interval)
        await life.start(Part("latest poller", self.poller.start, self.poller.stop))
        self.started_at = time.time()

    async def stop(self) -> None:
        await self._life.stop()

    @property
    def running(self) -> list[str]:
        return self._life.running

    def _open_store(self) -> None:
        self.store = Store.open(self.store_url)
        self.audit = AuditLog(self.store.engine)
        self.alarm_records = AlarmStore(self.store.engine)

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()

    def _open_historian(self) -> None:
        self.historian = open_historian(self.historian_backend, **self._historian_options)
        self.tag_ids = serving_tag_ids(self.plant, self.historian.tags())

    def _close_historian(self) -> None:
        if self.historian is not None:
            self.historian.close()

    def _start_latest(self) -> None:
        assert self.historian is not None
        self.latest.seed(self.historian.latest(sorted(set(self.tag_ids.values()))))
        self.latest.start(self.bus)
        self.services = Services.build(self.plant, self.tag_ids, self.latest, Components(
            bus=lambda: self.bus, historian=lambda: self.historian, store=lambda: self.store,
            states=lambda: self.states, downtime=lambda: None, alarms=lambda: None, control=lambda: None,
            audit=lambda: self.audit, health=self._health_sources(), trend_store=lambda: self.store,
            alarm_records=lambda: self.alarm_records, alarm_mirror=lambda: self.alarm_mirror.engine))

    def _health_sources(self) -> HealthSources:
        return HealthSources(
            historian=lambda: {"backend": self.historian_backend, "mode": "read (plantlink serve)",
                               **(self.poller.status() if self.poller is not None else {})},
            store=lambda: self.store.status() if self.store is not None else None)

    def status(self) -> dict[str, Any]:
        return {"mode": "serve", "tags": len(self.plant.tags), "historian": self.historian_where,
                "latest_poller": self.poller.status() if self.poller is not None else None,
                "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0}


async def serve_plant(plant: Plant, data_dir: str | Path, opts: Any, *, historian: str | None = None,
                      store_url: str | None = None, poll_interval: float = 1.0, duration: float = 0.0,
                      announce: bool = True) -> dict[str, Any]:
    """``plantlink serve``: the API and HMI over the shared store and historian until ``duration`` elapses (or
    forever); ``opts``: ``plantlink.app.ServeOptions``. Returns the status."""
    from plantlink.app import _say, _serve, _wait
    from plantlink.datadir import private_files, secure_data_dir

    with private_files():
        secure_data_dir(data_dir)
        serving = Serving(plant, data_dir, historian=historian, store_url=store_url, poll_interval=poll_interval)
        handle = None
        try:
            await serving.start()
            _say(announce, f"plantlink serve: {len(plant.tags)} tags, historian {serving.historian_where} (read)")
            handle = await _serve(serving, opts, announce)  # type: ignore[arg-type]  # duck-typed runtime
            await _wait(duration)
        finally:
            if handle is not None:
                await handle.stop()
            await serving.stop()
        status = serving.status()
        if handle is not None:
            status["api"] = handle.url
        return status
