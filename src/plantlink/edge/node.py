"""``plantlink edge``: the model's connectors -> the disk queue -> the forwarder -> the central's broker.

The edge has no historian and no engines: its tags are numbered locally (in model order) and travel by path.
With ``when_full: stop_reading`` the connectors are stopped when the queue is nearly full (less than one segment
of room) and new ones started when the backlog is back under ``alarm_at``. Crossing ``alarm_at`` upwards logs an
error and sets ``queue_alarm`` in the status the central shows (and raises as the edge's system alarm there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from plantlink import plugins
from plantlink.connectors.base import Connector, ConnectorPlugin, Point
from plantlink.edge.forward import Forwarder
from plantlink.edge.forward_nats import NatsForwarder
from plantlink.edge.payload import PathTable
from plantlink.edge.queue import EdgeQueue
from plantlink.lifecycle import Lifecycle, Part
from plantlink.model import Plant
from plantlink.samples import conform
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.edge")

WATCH_S = 0.2


class EdgeNode:
    def __init__(self, plant: Plant, data_dir: str | Path, commit_ms: float = 20.0):
        if plant.spec.edge is None:
            raise ValueError(f"{plant.file}: no edge: section (plantlink edge needs the edge's name and its "
                             "central broker; see docs/edge.md)")
        self.plant = plant
        self.settings = plant.spec.edge
        self.data_dir = Path(data_dir)
        qdir = Path(self.settings.queue.dir) if self.settings.queue.dir else self.data_dir / "edge-queue"
        self.queue = EdgeQueue(qdir, self.settings.queue, commit_ms)
        self.tag_ids = {t.path: i + 1 for i, t in enumerate(self.plant.tags)}
        paths = PathTable({i: p for p, i in self.tag_ids.items()})
        self.forwarder: Forwarder | NatsForwarder = (
            Forwarder(self.settings, self.queue, paths, self._extra_status) if self.settings.central is not None
            else NatsForwarder(self.settings, self.queue, paths, self._extra_status))
        self.connectors: dict[str, Connector] = {}
        self.paused = False
        self.pauses = 0
        self.queue_alarm = False
        self.ingest_refused = 0
        self.started_at: float | None = None
        self._watch: asyncio.Task[None] | None = None
        self._life = Lifecycle()

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.connectors = self._build_connectors()
        life = self._life
        await life.start(Part("edge queue", self.queue.open, blocking=True),
                         Part("edge queue writer", lambda: self.queue.start(self.forwarder.wake), self.queue.stop),
                         Part("forwarder", self.forwarder.start, self.forwarder.stop),
                         Part("queue watch", self._start_watch, self._stop_watch))
        await life.start(Part("connectors", self._start_connectors, self._stop_connectors))
        self.started_at = time.time()
        log.info("edge %s: %d tags on %d devices, forwarding to %s", self.settings.name, len(self.tag_ids),
                 len(self.connectors), self.settings.target)

    async def stop(self) -> None:
        await self._life.stop()

    def ingest(self, batch: pa.RecordBatch) -> None:
        try:
            batch = conform(batch)
        except ValueError as exc:
            self.ingest_refused += 1
            log.error("edge: a batch of %d rows was refused: %s", batch.num_rows, exc)
            return
        self.queue.append(batch)

    async def _start_connectors(self) -> None:
        for c in self.connectors.values():
            await c.start()

    async def _stop_connectors(self) -> None:
        for dev, c in self.connectors.items():
            try:
                await c.stop()
            except Exception:
                log.exception("edge: connector %s did not stop cleanly", dev)

    def _build_connectors(self) -> dict[str, Connector]:
        out: dict[str, Connector] = {}
        for dev_id, dev in self.plant.devices.items():
            points = [Point(self.tag_ids[t.path], t.path, t.tag, t.source) for t in self.plant.tags_of_device(dev_id)]
            if not dev.enabled or not points:
                continue
            plugin: ConnectorPlugin = plugins.load(plugins.CONNECTORS, dev.protocol)
            out[dev_id] = plugin.connector(dev_id, dev.config, points, self.ingest)
            out[dev_id].data_dir = self.data_dir
        return out

    # -- the queue's fill: alarm and stop_reading ---------------------------------------------------------
    def _start_watch(self) -> None:
        self._watch = asyncio.create_task(self._watch_queue(), name="edge-queue-watch")

    async def _stop_watch(self) -> None:
        await cancel_and_wait([self._watch], "edge queue watch")

    async def _watch_queue(self) -> None:
        while True:
            self.queue.write_cursor()  # the last acknowledgements of a burst (and deletes acknowledged segments)
            await self.check_queue()
            await asyncio.sleep(WATCH_S)

    async def check_queue(self) -> None:
        q = self.settings.queue
        fill = self.queue.fill
        if fill >= q.alarm_at and not self.queue_alarm:
            self.queue_alarm = True
            log.error("edge %s: the store-and-forward queue is %.0f%% full (alarm at %.0f%%; when full: %s)",
                      self.settings.name, 100 * fill, 100 * q.alarm_at, q.when_full)
        elif fill < q.alarm_at * 0.9 and self.queue_alarm:
            self.queue_alarm = False
            log.warning("edge %s: the store-and-forward queue is back to %.0f%%", self.settings.name, 100 * fill)
        if q.when_full != "stop_reading":
            return
        room = q.max_size - self.queue.wal.used_bytes
        if not self.paused and room < q.segment_size and self.queue.backlog_batches:
            self.paused = True
            self.pauses += 1
            log.error("edge %s: queue full: the connectors stop reading until the central takes the backlog",
                      self.settings.name)
            await self._stop_connectors()
        elif self.paused and (fill < q.alarm_at or self.queue.backlog_batches == 0):
            self.paused = False
            log.warning("edge %s: queue at %.0f%%: the connectors read again", self.settings.name, 100 * fill)
            self.connectors = self._build_connectors()  # new ones: a connector is not made to start twice
            await self._start_connectors()

    def _extra_status(self) -> dict[str, Any]:
        return {"paused": self.paused, "pauses": self.pauses, "queue_alarm": self.queue_alarm,
                "ingest_refused": self.ingest_refused,
                "devices": {d: c.health.state.value for d, c in self.connectors.items()}}

    def status(self) -> dict[str, Any]:
        return {"edge": self.settings.name, "tags": len(self.tag_ids), "queue": self.queue.status(),
                "forwarder": {"connected": self.forwarder.connected, "connects": self.forwarder.connects,
                              "sent_batches": self.forwarder.sent_batches, "last_error": self.forwarder.last_error},
                **self._extra_status(),
                "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0}
