"""Wire a plant model into a running system: connectors -> bus -> historian.

``Runtime`` is what ``plantlink run`` and ``plantlink demo`` start: it opens the historian, registers the
model's tags (stable ids), starts one connector per enabled device, and a writer task that moves batches
from the bus into the historian and makes them durable every ``flush_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from plantlink import plugins
from plantlink.audit import AuditLog
from plantlink.bus import Bus, InProcBus, Subscription
from plantlink.connectors.base import Connector, ConnectorPlugin, Point
from plantlink.control.service import ControlService
from plantlink.engines.alarms import AlarmEngine
from plantlink.engines.alarms.service import AlarmService
from plantlink.engines.calendar import PlannedTime
from plantlink.engines.downtime import DowntimeEngine
from plantlink.engines.states import StateEngine
from plantlink.historian import Historian, TagMeta, default_path, open_historian
from plantlink.model import Plant
from plantlink.notify import Notifier
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore

log = logging.getLogger("plantlink.runtime")


class HistorianWriter:
    """Consumes a lossless bus subscription, writes batches, flushes in a worker thread."""

    def __init__(self, historian: Historian, sub: Subscription, flush_interval: float = 1.0):
        self.historian = historian
        self.sub = sub
        self.flush_interval = flush_interval
        self.received = 0
        self.errors = 0
        self.last_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._flusher())]

    async def _consume(self) -> None:
        async for batch in self.sub:
            try:
                self.historian.write(batch)
                self.received += batch.num_rows
            except Exception as exc:  # a bad batch must not stop storage of the others
                self.errors += 1
                self.last_error = str(exc)
                log.exception("historian refused a batch of %d rows", batch.num_rows)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        try:
            await asyncio.to_thread(self.historian.flush)
        except Exception as exc:
            self.errors += 1
            self.last_error = str(exc)
            log.exception("historian flush failed")

    async def stop(self) -> None:
        """Drain what the bus holds, stop, and flush: every batch published before stop is stored."""
        self.sub.close()
        consume, flusher = self._tasks
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await consume
        await self.flush()


class Runtime:
    def __init__(
        self,
        plant: Plant,
        data_dir: str | Path,
        *,
        historian: str = "duckdb",
        bus: Bus | None = None,
        flush_interval: float = 1.0,
        store_url: str | None = None,
    ):
        self.plant = plant
        self.data_dir = Path(data_dir)
        self.historian_backend = historian
        self.bus: Bus = bus or InProcBus()
        self.flush_interval = flush_interval
        self.store_url = store_url or default_url(self.data_dir)
        self.store: Store | None = None
        self.states: StateEngine | None = None
        self.downtime: DowntimeEngine | None = None
        self.audit: AuditLog | None = None
        self.alarm_engine: AlarmEngine | None = None
        self.alarms: AlarmService | None = None
        self.notifier: Notifier | None = None
        self.control: ControlService | None = None
        self._engine_tasks: list[asyncio.Task[None]] = []
        self._engine_subs: list[Subscription] = []
        self.historian: Historian | None = None
        self.writer: HistorianWriter | None = None
        self.connectors: dict[str, Connector] = {}
        self.tag_ids: dict[str, int] = {}
        self.started_at: float | None = None
        #: Each device's status as it was when stop() began (after stop they all read "stopped").
        self._final_states: dict[str, str] = {}

    @property
    def historian_path(self) -> Path:
        return default_path(self.data_dir)

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.historian = await asyncio.to_thread(
            open_historian, self.historian_backend, path=self.historian_path
        )
        metas = [TagMeta(t.path, t.tag.unit, t.tag.type) for t in self.plant.tags]
        self.tag_ids = self.historian.register_tags(metas)
        self.writer = HistorianWriter(self.historian, self.bus.subscribe("historian"), self.flush_interval)
        self.writer.start()
        await self._start_engines()
        self.connectors = self._build_connectors()
        for conn in self.connectors.values():
            await conn.start()
        self.started_at = time.time()
        log.info("running %d tags on %d devices", len(self.plant.tags), len(self.connectors))

    async def _start_engines(self) -> None:
        """The relational store, then machine states and downtime (fed by a lossless bus subscription)."""
        self.store = await asyncio.to_thread(Store.open, self.store_url)
        planned = {s.name: PlannedTime.of_site(s) for s in self.plant.sites}
        self.states = StateEngine(self.plant, self.store, planned)
        self.downtime = DowntimeEngine(self.plant, self.store)
        self.downtime.attach(self.states)  # before the state engine starts: it recovers open events first
        self.audit = AuditLog(self.store.engine)
        self.audit.record("config.load", "system", target=self.plant.file, details=self._config_fingerprint())
        self.control = ControlService(self, self.audit)
        self._start_alarms(self.store)
        self.states.start()
        for name, engine in (("states", self.states), ("alarms", self.alarm_engine)):
            assert engine is not None
            sub = self.bus.subscribe(name)  # lossless: every sample reaches the engines
            self._engine_subs.append(sub)
            self._engine_tasks.append(asyncio.create_task(engine.run(sub, self.tag_ids)))

    def _config_fingerprint(self) -> dict[str, Any]:
        """What the audit log keeps of a plant model load: its digest and size, so a change is visible."""
        try:
            digest = hashlib.sha256(Path(self.plant.file).read_bytes()).hexdigest()
        except OSError:
            digest = None  # a model parsed from text (tests, the demo's port-rewritten copy)
        return {"sha256": digest, "tags": len(self.plant.tags), "devices": len(self.plant.devices)}

    def _start_alarms(self, store: Store) -> None:
        """ISA-18.2 alarms (fed like the state engine) and, when configured, their notifications."""
        assert self.states is not None
        astore = AlarmStore(store.engine)
        self.alarm_engine = AlarmEngine(self.plant, astore)
        self.alarm_engine.attach(self.states)
        self.alarm_engine.start()
        if self.plant.spec.notifications is not None:
            zones = {s.name: s.timezone for s in self.plant.sites}
            self.notifier = Notifier(self.plant.spec.notifications, astore, zones)
            self.alarm_engine.add_listener(self.notifier.on_event)
            self.notifier.start()
        self.alarms = AlarmService(self.alarm_engine, astore, self.notifier, audit=self.audit)

    async def _stop_engines(self) -> None:
        for sub in self._engine_subs:
            sub.close()
        for task in self._engine_tasks:
            try:
                await task
            except Exception:
                log.exception("an engine did not stop cleanly")
        if self.states is not None and self.states.started:  # stopped before its task ran: stop it here
            self.states.stop()
        if self.notifier is not None:
            await self.notifier.stop()
        if self.store is not None:
            self.store.close()

    def _build_connectors(self) -> dict[str, Connector]:
        out: dict[str, Connector] = {}
        for dev_id, dev in self.plant.devices.items():
            if not dev.enabled:
                continue
            points = [
                Point(self.tag_ids[t.path], t.path, t.tag, t.source) for t in self.plant.tags_of_device(dev_id)
            ]
            if not points:
                continue
            plugin: ConnectorPlugin = plugins.load("plantlink.connectors", dev.protocol)
            out[dev_id] = plugin.connector(dev_id, dev.config, points, self.bus.publish)
        return out

    async def stop(self) -> None:
        self._final_states = {dev: c.health.state.value for dev, c in self.connectors.items()}
        for conn in self.connectors.values():
            try:
                await conn.stop()
            except Exception:
                log.exception("connector %s did not stop cleanly", conn.device_id)
        await self._stop_engines()
        if self.writer is not None:
            await self.writer.stop()
        if self.historian is not None:
            await asyncio.to_thread(self.historian.close)

    def _connector_status(self, dev_id: str, conn: Connector) -> dict[str, Any]:
        out = conn.health.to_dict()
        if dev_id in self._final_states:  # after stop: report how the device was doing, not "stopped"
            out["status"] = self._final_states[dev_id]
        return out

    def status(self) -> dict[str, Any]:
        h = self.historian
        return {
            "tags": len(self.plant.tags),
            "samples_stored": h.samples_stored if h is not None else 0,
            "connectors": {dev_id: self._connector_status(dev_id, c) for dev_id, c in self.connectors.items()},
            "historian": str(self.historian_path),
            "historian_status": {
                "backend": self.historian_backend,
                "received": self.writer.received if self.writer else 0,
                "errors": self.writer.errors if self.writer else 0,
                "last_error": self.writer.last_error if self.writer else None,
            },
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
        }
