"""Wire a plant model into a running system: connectors -> write-ahead log -> bus -> historian.

``Runtime`` is what ``plantlink run`` and ``plantlink demo`` start: it opens the historian, registers the
model's tags (stable ids), replays what the write-ahead log holds beyond the historian's durable position,
starts one connector per enabled device, and a writer task that moves batches from the bus into the
historian and makes them durable every ``flush_interval`` seconds (then checkpoints the log). The historian's
retention and rollups run on a schedule of their own (``maintenance``, a thread); the engines' events are
written to the relational store by one ``Recorder`` (a thread), never in the event loop.

Connectors deliver into ``Runtime.ingest``: the log's ``append``, which publishes a batch on the bus only once
it is fsynced (so live clients, engines and the historian writer see logged data only); while the historian
writer (or an engine) is more than ``WalSettings.hold_bytes`` behind, the log holds delivery on disk and reads
the batches back as it catches up (``plantlink.wal.delivery``), so what waits in memory is bounded. Without a
log (``WalSettings(enabled=False)``) ``ingest`` is ``bus.publish``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from plantlink import plugins
from plantlink.audit import AuditLog
from plantlink.autotags import AutoTagger
from plantlink.bus import Bus, Subscription, open_bus
from plantlink.connectors.base import Connector, ConnectorPlugin
from plantlink.control.service import ControlService
from plantlink.control.wiring import ControlWiring
from plantlink.edge.payload import edge_seq_of
from plantlink.engines.alarms import AlarmEngine
from plantlink.engines.alarms.service import AlarmService
from plantlink.engines.anomaly import AnomalyEngine, ModelFiles
from plantlink.engines.calendar import PlannedTime
from plantlink.engines.downtime import DowntimeEngine
from plantlink.engines.events import Sinks
from plantlink.engines.recorder import Recorder
from plantlink.engines.rul import RulEngine
from plantlink.engines.spc import SpcEngine
from plantlink.engines.states import StateEngine
from plantlink.errors import HistorianError
from plantlink.historian import Historian, TagMeta, default_path, historian_target, open_historian
from plantlink.historian_writer import HistorianWriter
from plantlink.lifecycle import Component, Lifecycle, Part
from plantlink.maintenance import Maintenance, MaintenanceSettings
from plantlink.model import Plant
from plantlink.model.reports import ReportSchedule
from plantlink.notify import Notifier
from plantlink.reload import ModelApplier, connector_part, device_points, startup_renames
from plantlink.reports.schedule import RECORD_FILE, ReportScheduler
from plantlink.samples import conform, now_us
from plantlink.services import Components, Services
from plantlink.services.health import HealthSources
from plantlink.services.latest import LatestValues
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore
from plantlink.wal import WalSettings, WriteAheadLog

if TYPE_CHECKING:
    from plantlink.edge.central import EdgeReceiver
    from plantlink.publish.base import Publisher

log = logging.getLogger("plantlink.runtime")


class Runtime:
    def __init__(
        self,
        plant: Plant,
        data_dir: str | Path,
        *,
        historian: str | None = None,
        bus: Bus | str = "inproc",
        flush_interval: float = 1.0,
        store_url: str | None = None,
        wal: WalSettings | None = None,
        maintenance: MaintenanceSettings | None = None,
    ):
        self.plant = plant
        self.data_dir = Path(data_dir)
        #: ``historian``, else the model's ``historian:``, else DuckDB (``plantlink.historian.historian_target``)
        self.historian_backend, self._historian_options, self.historian_where = historian_target(
            historian or plant.spec.historian or "duckdb", self.data_dir)
        self.bus: Bus = bus if isinstance(bus, Bus) else open_bus(bus)
        self.flush_interval = flush_interval
        self.wal_settings = wal or WalSettings()
        self.wal: WriteAheadLog | None = None
        self.maintenance_settings = maintenance or MaintenanceSettings()
        self.maintenance: Maintenance | None = None
        self.store_url = store_url or default_url(self.data_dir)
        self.store: Store | None = None
        self.recorder: Recorder | None = None
        self.states: StateEngine | None = None
        self.downtime: DowntimeEngine | None = None
        self.audit: AuditLog | None = None
        self.alarm_engine: AlarmEngine | None = None
        self.alarms: AlarmService | None = None
        self.spc: SpcEngine | None = None
        self.anomaly: AnomalyEngine | None = None
        self.rul: RulEngine | None = None
        self.notifier: Notifier | None = None
        self.report_schedule: ReportScheduler | None = None
        self.control: ControlService | None = None
        #: The MQTT publishers of the plant model's ``publish:`` section (``plantlink.publish``): UNS, Sparkplug.
        self.publishers: list[Publisher] = []
        #: The edges' batches, when the model has an ``edges:`` section (``plantlink.edge.central``).
        self.edge_receiver: EdgeReceiver | None = None
        self.replayed_edge_seqs: list[tuple[str, int]] = []  # (edge, seq) of the batches the log replayed
        #: The one bus-fed latest-value cache, and the services built over this runtime (after ``start``).
        self.latest = LatestValues()
        self.services: Services | None = None
        self._engine_tasks: list[asyncio.Task[None]] = []
        self._engine_subs: list[Subscription] = []
        self._engine_names: set[str] = set()
        self.historian: Historian | None = None
        self.writer: HistorianWriter | None = None
        self.connectors: dict[str, Connector] = {}
        self.tag_ids: dict[str, int] = {}
        self.started_at: float | None = None
        self.ingest_refused = 0  # batches that are not in (and cannot be conformed to) the samples schema
        #: Each device's status as it was when stop() began (after stop they all read "stopped").
        self._final_states: dict[str, str] = {}
        self._life = Lifecycle()
        #: Plans against and applies to the running model (``plantlink plan`` / ``apply``); tags from births.
        self.model, self.auto_tags = ModelApplier(self), AutoTagger(self)

    @property
    def historian_path(self) -> Path:
        return default_path(self.data_dir)

    async def start(self) -> None:
        """Start every part in order (``plantlink.lifecycle``); when one fails, what started is stopped again
        (in reverse order) and the error is raised: nothing is left running."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._final_states, self.plant = {}, self.auto_tags.at_start(self.plant)
        life = self._life
        await life.start(Part("historian", self._open_historian, self._close_historian, blocking=True))
        if self.wal_settings.enabled:
            self.wal = WriteAheadLog(self.data_dir / "wal", self.wal_settings)
            await life.start(Part("write-ahead log replay", self._replay_wal, blocking=True))
        assert self.historian is not None
        # first on the bus: live values are latency-bound (the live stream listens there)
        await life.start(Part("latest values", self._start_services, self.latest.stop))
        self.writer = HistorianWriter(self.historian, self.bus.subscribe("historian"), self.flush_interval,
                                      after_flush=self._checkpoint)
        self.maintenance = Maintenance(self.historian, self.maintenance_settings)
        await life.start(Part("historian writer", self.writer.start, self.writer.stop),
                         Part("maintenance", self.maintenance.start, self.maintenance.stop, blocking=True))
        await self._start_engines()
        if self.plant.spec.reports:  # the plant model's report schedules (docs/reports.md)
            await life.start(self.report_part(self.plant.spec.reports))
        if self.wal is not None:
            wal = self.wal
            await life.start(Part("write-ahead log", lambda: wal.start(self.bus.publish, self.historian_durable,
                                                                       self.bus.backlog_bytes), wal.stop))
        if self.plant.spec.edges is not None:  # a central: the edges' batches (docs/edge.md), the mqtt extra
            from plantlink.edge.central import EdgeReceiver

            self.edge_receiver = EdgeReceiver(self.plant.spec.edges, self.data_dir, self.tag_ids, self.ingest_then,
                                              self.replayed_edge_seqs, self._edge_alarm)
            await life.start(Part("edge receiver", self.edge_receiver.start, self.edge_receiver.stop))
        self.publishers = self.build_publishers()
        await life.start(*self.publishers)
        self.connectors = self.build_connectors()
        await life.start(*(connector_part(dev, c) for dev, c in self.connectors.items()))
        self.started_at = time.time()
        log.info("running %d tags on %d devices", len(self.plant.tags), len(self.connectors))

    @property
    def running(self) -> list[str]:
        """The parts that are running, in start order (empty before ``start`` and after ``stop``)."""
        return self._life.running

    @property
    def historian_durable(self) -> int:
        return self.historian.durable_seq if self.historian is not None else 0

    def _open_historian(self) -> None:
        self.historian = open_historian(self.historian_backend, **self._historian_options)
        renames = startup_renames(self.plant, set(self.historian.tags().column("path").to_pylist()))
        if renames:  # a model edited with was: and started instead of applied: the history follows the same
            log.info("renaming %d tags as the model's was: says: %s", len(renames), renames)
            self.historian.rename_tags(renames)
        metas = [TagMeta(t.path, t.tag.unit, t.tag.type) for t in self.plant.all_tags]
        self.tag_ids = self.historian.register_tags(metas)

    def _close_historian(self) -> None:
        if self.historian is not None:
            self.historian.close()
            self._checkpoint()

    def _start_services(self) -> None:
        """The latest values (seeded from the historian, then fed by the bus) and the services over them."""
        assert self.historian is not None
        self.latest.seed(self.historian.latest(sorted(set(self.tag_ids.values()))))
        self.latest.start(self.bus)
        self.reload_services()

    def reload_services(self) -> None:
        """Build the services over the runtime's model and tag ids (at start, and when a model is applied)."""
        self.services = Services.build(self.plant, self.tag_ids, self.latest, Components(
            bus=lambda: self.bus, historian=lambda: self.historian, store=lambda: self.store,
            states=lambda: self.states, downtime=lambda: self.downtime, alarms=lambda: self.alarms,
            control=lambda: self.control, audit=lambda: self.audit, health=self._health_sources(),
            trend_store=lambda: self.store, anomaly=lambda: self.anomaly,
            rul=lambda: self.rul, model=lambda: self.model))

    def _health_sources(self) -> HealthSources:
        return HealthSources(
            devices=lambda: {d: self._connector_status(d, c) for d, c in self.connectors.items()},
            recorder=lambda: self.recorder.status() if self.recorder is not None else None,
            wal=lambda: self.wal.status() if self.wal is not None else {"enabled": False},
            historian=self._historian_status,
            notifier=lambda: self.notifier.status() if self.notifier is not None else None,
            publish=lambda: {p.name: p.status() for p in self.publishers},
            edges=lambda: self.edge_receiver.status() if self.edge_receiver is not None else {},
            store=lambda: self.store.status() if self.store is not None else None)

    def _edge_alarm(self, edge: str, active: bool, fill: float) -> None:
        """An expected edge's "queue nearly full" alarm (``engines.alarms.derived.edge_alarms``), from its status."""
        from plantlink.engines.alarms.derived import edge_alarm_key

        engine = self.alarm_engine
        key = edge_alarm_key(self.plant.sites[0].name, edge)
        if engine is not None and key in engine.by_key:
            engine.derive([key], [now_us()], [active], [fill])

    def _historian_status(self) -> dict[str, Any]:
        w = self.writer
        return {"backend": self.historian_backend, "received": w.received if w else 0, "errors": w.errors if w else 0,
                "last_error": w.last_error if w else None, "buffer_full_waits": w.waits if w else 0,
                "backlog_batches": w.sub.pending() if w else 0,
                "refused": self.historian.refused if self.historian is not None else {}}

    def _replay_wal(self) -> None:
        """Store what the log holds beyond the historian's durable position (a crash's last moments), make it
        durable, and delete the segments that are now wholly in the historian."""
        assert self.wal is not None and self.historian is not None
        self.wal.open()
        for seq, batch in self.wal.replay(self.historian.durable_seq):
            if (came := edge_seq_of(batch)) is not None:
                self.replayed_edge_seqs.append(came)
            try:
                self.historian.write(batch, seq)
            except HistorianError as exc:
                log.error("write-ahead log: batch %d (%d samples) not replayed: %s", seq, batch.num_rows, exc)
        self.historian.flush()
        self._checkpoint()
        if self.wal.stats.replayed_batches:
            log.warning("write-ahead log: replayed %d batches (%d samples) that the historian had not stored "
                        "before the last stop", self.wal.stats.replayed_batches, self.wal.stats.replayed_rows)

    def _checkpoint(self) -> None:
        if self.wal is not None and self.historian is not None:
            self.wal.checkpoint(self.historian.durable_seq)

    def ingest(self, batch: pa.RecordBatch) -> None:
        """Where samples enter: the log (delivered on the bus once durable), or the bus without a log. The one
        place a batch is conformed to ``samples.SAMPLE_SCHEMA`` (a connector that still sends a legacy shape
        keeps working); one that cannot be is refused, counted (``ingest_refused``) and logged."""
        self.ingest_then(batch)

    def ingest_then(self, batch: pa.RecordBatch, then: Callable[[], None] | None = None) -> bool:
        """``ingest``, calling ``then`` once the batch is durable (the edge receiver acknowledges it to the broker
        then); False when it is refused (not conformable, or the log is full)."""
        try:
            batch = conform(batch)
        except ValueError as exc:
            self.ingest_refused += 1
            if self.ingest_refused % 1000 == 1:  # a connector that sends bad batches sends many
                log.error("a batch of %d rows was refused at ingest (%d so far): %s", batch.num_rows,
                          self.ingest_refused, exc)
            return False
        if self.wal is not None:
            return self.wal.append(batch, then)
        self.bus.publish(batch)
        if then is not None:  # without a log: "durable" is as good as it gets (published to the historian)
            then()
        return True

    async def _start_engines(self) -> None:
        """The relational store, the recorder, then machine states, downtime and alarms (fed by lossless bus
        subscriptions)."""
        life = self._life
        await life.start(Part("store", self._open_store, self._close_store, blocking=True))
        assert self.store is not None
        self.recorder = Recorder(Sinks.of(self.store), dead_letter=self.data_dir / "recorder-failed.jsonl")
        # everything the engines produced is written before the store closes
        await life.start(Part("recorder", self.recorder.start, self.recorder.close, blocking=True))
        planned = {s.name: PlannedTime.of_site(s) for s in self.plant.sites}
        self.states = StateEngine(self.plant, self.store, planned, recorder=self.recorder, tag_ids=self.tag_ids)
        self.downtime = DowntimeEngine(self.plant, self.store, recorder=self.recorder)
        self.downtime.attach(self.states)  # before the state engine starts: it recovers open events first
        self.audit = AuditLog(self.store.engine)
        self.audit.record("config.load", "system", target=self.plant.file, details=self._config_fingerprint())
        self.control = ControlService(ControlWiring.of(self), self.audit)
        await life.start(Part("alarms", self._start_alarms, self._stop_notifier),
                         Part("state engine", self._start_states, self._stop_states),
                         Part("engine tasks", self._run_engines, self._stop_engine_tasks),
                         Part("remaining life", self._start_rul, self._stop_rul))

    def _open_store(self) -> None:
        self.store = Store.open(self.store_url)

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()

    def _start_states(self) -> None:
        assert self.states is not None
        self.states.start()

    def _stop_states(self) -> None:
        if self.states is not None and self.states.started:  # stopped before its task ran: stop it here
            self.states.stop()

    async def _stop_notifier(self) -> None:
        if self.notifier is not None:
            await self.notifier.stop()

    def _run_engines(self) -> None:
        engines: tuple[tuple[str, Any], ...] = (("states", self.states), ("alarms", self.alarm_engine))
        if self.spc is not None and self.spc.streams:
            engines += (("spc", self.spc),)
        if self.anomaly is not None and self.anomaly.machines:
            engines += (("anomaly", self.anomaly),)
        for name, engine in engines:
            assert engine is not None
            if name in self._engine_names:
                continue
            self._engine_names.add(name)
            sub = self.bus.subscribe(name)  # lossless: every sample reaches the engines
            self._engine_subs.append(sub)
            self._engine_tasks.append(asyncio.create_task(engine.run(sub)))

    def _config_fingerprint(self) -> dict[str, Any]:
        """What the audit log keeps of a plant model load: its digest and size, so a change is visible."""
        try:
            digest = hashlib.sha256(Path(self.plant.file).read_bytes()).hexdigest()
        except OSError:
            digest = None  # a model parsed from text (tests, the demo's port-rewritten copy)
        return {"sha256": digest, "tags": len(self.plant.tags), "devices": len(self.plant.devices)}

    def _start_alarms(self) -> None:
        """ISA-18.2 alarms (fed like the state engine) and, when configured, their notifications."""
        assert self.states is not None and self.store is not None
        astore = AlarmStore(self.store.engine)
        self.alarm_engine = AlarmEngine(self.plant, astore, recorder=self.recorder, tag_ids=self.tag_ids)
        self.alarm_engine.attach(self.states)
        self.alarm_engine.start()
        self.spc = SpcEngine(self.plant, self.tag_ids, self.alarm_engine)  # live SPC rules raise alarms
        self.anomaly = AnomalyEngine(self.plant, self.tag_ids, self.alarm_engine, self.ingest,
                                     ModelFiles(self.data_dir / "analytics" / "anomaly"))
        self.anomaly.load()
        self.rul = RulEngine(self.plant, self.tag_ids, self.alarm_engine, self.ingest, lambda: self.historian)
        if self.plant.spec.notifications is not None:
            self.start_notifier(astore)
        self.alarms = AlarmService(self.alarm_engine, astore, self.notifier, audit=self.audit)

    def start_notifier(self, astore: AlarmStore) -> None:
        """The notifier of the model's ``notifications:``, told every alarm transition."""
        assert self.alarm_engine is not None and self.plant.spec.notifications is not None
        zones = {s.name: s.timezone for s in self.plant.sites}
        tags = {t.path: t.tag for t in self.plant.tags}
        self.notifier = Notifier(self.plant.spec.notifications, astore, zones, tags=tags)
        self.alarm_engine.add_listener(self.notifier.on_event)
        self.notifier.start()

    def _start_rul(self) -> None:
        if self.rul is not None:
            self.rul.start()

    async def _stop_rul(self) -> None:
        if self.rul is not None:
            await asyncio.to_thread(self.rul.stop)

    async def _stop_engine_tasks(self) -> None:
        for sub in self._engine_subs:
            sub.close()
        tasks, self._engine_tasks, self._engine_subs = self._engine_tasks, [], []
        self._engine_names.clear()
        for task in tasks:
            try:
                await task
            except Exception:
                log.exception("an engine did not stop cleanly")

    def build_connectors(self, only: set[str] | None = None) -> dict[str, Connector]:
        """The connectors of the model's enabled devices that have tags (of ``only`` those, when given)."""
        out: dict[str, Connector] = {}
        for dev_id, dev in self.plant.devices.items():
            if not dev.enabled or (only is not None and dev_id not in only):
                continue
            points = device_points(self.plant, self.tag_ids, dev_id)
            if not points and not self.auto_tags.wants(dev):  # auto_tags: it creates its tags from births
                continue
            plugin: ConnectorPlugin = plugins.load(plugins.CONNECTORS, dev.protocol)
            out[dev_id] = conn = plugin.connector(dev_id, dev.config, points, self.ingest)
            conn.data_dir = self.data_dir
            self.auto_tags.attach(dev_id, conn)
        return out

    def build_publishers(self) -> list[Publisher]:
        settings = self.plant.spec.publish
        if settings is None:
            return []
        from plantlink.publish.commands import CommandGate
        from plantlink.publish.sparkplug_edge import SparkplugEdge  # the mqtt extra, only when configured
        from plantlink.publish.uns import UnsPublisher, targets_of

        tags = [(self.tag_ids[t.path], t.path, t.tag.unit, t.tag.type) for t in self.plant.all_tags]
        targets = targets_of(settings, self.plant.spec.enterprise, tags)
        # writes asked over MQTT: through the control service as the HMI's, refused unless enabled
        gate = CommandGate(settings.commands, lambda: self.services.control if self.services is not None else None)
        out: list[Publisher] = [UnsPublisher(settings, targets, self.bus, gate)] if settings.uns.enabled else []
        return out + ([SparkplugEdge(settings, targets, self.bus, gate)] if settings.sparkplug is not None else [])

    def report_part(self, schedules: Sequence[ReportSchedule]) -> Part:
        """A report scheduler for ``schedules`` (``self.report_schedule``), as a part to start."""
        self.report_schedule = sched = ReportScheduler(schedules, lambda: self.services, self.plant.spec.notifications,
                                                       self.data_dir / RECORD_FILE)
        return Part("report schedule", sched.start, sched.stop, blocking=True)

    def adopt_part(self, part: Component) -> None:
        self._life.adopt(part)

    def forget_part(self, name: str) -> None:
        self._life.forget(name)

    async def reload_engines(self, renames: Mapping[str, str]) -> None:
        """Hand the engines the model just swapped in (``plantlink.reload``; ``renames``: new path -> former),
        between two batches (in the event loop, where they run): alarms, machine states (and shift calendars),
        downtime reasons and micro-stops, SPC, anomaly detection, remaining life and notifications. Each keeps the
        running state of what did not change (see their ``reload``). A notifications section added or removed,
        report schedules and MQTT publishing follow in ``ModelApplier``."""
        plant, ids = self.plant, self.tag_ids
        if self.alarm_engine is not None:
            self.alarm_engine.reload(plant, ids, renames)
        t = now_us()
        if self.downtime is not None:
            self.downtime.reload(plant)
        if self.states is not None:
            planned = {s.name: PlannedTime.of_site(s) for s in plant.sites}
            removed = self.states.reload(plant, ids, planned, t)
            if self.downtime is not None:
                self.downtime.end_machines(removed, t)
        if self.spc is not None:
            self.spc.reload(plant, ids)
        if self.anomaly is not None:
            again = self.anomaly.reload(plant, ids)
            if again:
                await asyncio.to_thread(self.anomaly.load, again)
        if self.rul is not None:
            self.rul.reload(plant, ids)
            if self._engine_tasks:  # running: a first rul: block starts the schedule
                self.rul.start()
        if self.notifier is not None and plant.spec.notifications is not None:
            self.notifier.reload(plant.spec.notifications, {s.name: s.timezone for s in plant.sites},
                                 {tag.path: tag.tag for tag in plant.tags})
        if self._engine_tasks:  # running: an engine that had nothing to do at start may have now
            self._run_engines()

    async def stop(self) -> None:
        """Stop every running part, the last started first: the connectors, then the log (what they handed in
        is logged and on the bus), the engines and the recorder (everything they produced is written), the
        writer (every published batch is stored), maintenance, the historian. A part that fails to stop is
        logged; the others still stop."""
        self._final_states = {dev: c.health.state.value for dev, c in self.connectors.items()}
        await self._life.stop()

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
            "historian": self.historian_where,
            "historian_status": self._historian_status(),
            "ingest_refused": self.ingest_refused,
            "wal": self.wal.status() if self.wal is not None else {"enabled": False},
            "recorder": self.recorder.status() if self.recorder is not None else None,
            "maintenance": self.maintenance.status() if self.maintenance is not None else None,
            "publish": {p.name: p.status() for p in self.publishers},
            "edges": self.edge_receiver.status() if self.edge_receiver is not None else {},
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
        }
