"""The engines of ``plantlink ingest``: machine states, downtime and alarms, per site, run by the site's owner.

A worker given a store (``--store-url``) starts a site's engines when it takes the site's lease
(:meth:`EngineHost.on_acquire`), feeds them every fetch of the site it stored, before acknowledging it
(:meth:`EngineHost.on_stored`), ticks them about once a second while its lease is valid, and stops them when it
gives the site up (:meth:`EngineHost.on_release`: intervals and downtime events closed with end reason "stop",
alarm states written, before the lease key is deleted, so the next owner finds a clean handover). A worker that
*loses* a lease (not renewed in time, or another worker has it) drops the site's engines without writing: it may
no longer act for the site, and the next owner closes what was left open at the site's last known time, as after
a crash (:meth:`EngineHost.on_lost`).

The engines write through a recorder that is not threaded: each step's events are in the store when the step
returns, so a fetch's intervals and alarm states are written before the fetch is acknowledged, and nothing is
written after the worker stopped acting for the site. Each site's engines keep their own clock in the store
(meta ``states.last_us.<site>``) and recover only their own machines' open intervals and downtime events; the
alarm engine restores only the site's alarms (its plant is the site: :func:`plantlink.model.site_plant`).

Not run here (they run in ``plantlink run``): SPC, anomaly detection, remaining life, notifications, runs of
plantlink (``runs`` in the store), report schedules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from plantlink.engines.alarms import AlarmEngine
from plantlink.engines.calendar import PlannedTime
from plantlink.engines.downtime import DowntimeEngine
from plantlink.engines.events import Sinks
from plantlink.engines.recorder import Recorder
from plantlink.engines.states import LAST_US_KEY, StateEngine
from plantlink.errors import StoreError
from plantlink.model import Plant, site_plant
from plantlink.samples import now_us
from plantlink.store import Store
from plantlink.store.alarm_repo import AlarmStore
from plantlink.tasks import cancel_and_wait

log = logging.getLogger("plantlink.ingest.engines")

TICK_S = 1.0
#: how long a fetch waits for its engine records to be written (the store failing) before it is left unacknowledged
FLUSH_S = 5.0


def site_key(site: str) -> str:
    """The store's meta key of one site's engine clock."""
    return f"{LAST_US_KEY}.{site}"


class SiteStateEngine(StateEngine):
    """The state engine of one site: its own clock key; at start it closes only its machines' intervals left open
    (at the site's last known time, end reason "crash"); it records no runs of plantlink."""

    def __init__(self, site: str, *args: Any, **kwargs: Any):
        self.last_key = site_key(site)
        super().__init__(*args, **kwargs)

    left_open_by = "the site's last owner"

    def _owns(self, machine: str) -> bool:
        return machine in self.machines  # another site's interval is its owner's

    def _begin_run(self, t: int, last: int | None) -> None:
        """No run of plantlink is recorded: the runs are the ``plantlink run`` processes'."""


class SiteDowntimeEngine(DowntimeEngine):
    """The downtime engine of one site: recovers only its machines' open events, at the site's clock."""

    def __init__(self, site: str, plant: Plant, store: Store, **kwargs: Any):
        self.last_key = site_key(site)
        self._machines = {path for path, _ in plant.machines()}
        super().__init__(plant, store, **kwargs)

    def start(self) -> list[Any]:
        last = self.store.get_meta(self.last_key)
        closed = []
        for ev in self.store.open_events():
            if ev.machine not in self._machines:
                continue
            end = max(ev.start_us, last if last is not None else ev.start_us)
            closed.append(self._recover(ev, end))
        self._open.clear()
        return closed


class SiteEngines:
    """One site's machine states, downtime and alarms over the shared store, written in the caller's thread."""

    def __init__(self, plant: Plant, site: str, store: Store, tag_ids: Mapping[str, int],
                 now: Callable[[], int] = now_us, dead_letter: Path | None = None):
        self.site = site
        self.plant = site_plant(plant, site)
        # not started: each step's events are written when it returns
        self.recorder = Recorder(Sinks.of(store), dead_letter=dead_letter)
        planned = {s.name: PlannedTime.of_site(s) for s in self.plant.sites}
        self.states = SiteStateEngine(site, self.plant, store, planned, now=now, recorder=self.recorder,
                                      tag_ids=tag_ids)
        self.downtime = SiteDowntimeEngine(site, self.plant, store, now=now, recorder=self.recorder)
        self.downtime.attach(self.states)  # recovers the site's open events before the state engine starts
        self.alarms = AlarmEngine(self.plant, AlarmStore(store.engine), now=now, recorder=self.recorder,
                                  tag_ids=tag_ids)
        self.alarms.attach(self.states)

    def start(self, t: int) -> None:
        self.alarms.start(t)  # the site's alarm states as the store has them
        self.states.start(t)

    def feed(self, batches: Sequence[pa.RecordBatch]) -> None:
        """Feed a fetch; its records are in the store when this returns, else StoreError (the fetch is then not
        acknowledged: redelivered; the records wait in the recorder and are written, in order, at its next try)."""
        for b in batches:
            self.states.feed(b)
            self.alarms.feed(b)
        if not self.recorder.flush(FLUSH_S):
            raise StoreError(f"site {self.site}: the engines' records are not written "
                             f"({self.recorder.last_error}); the fetch is not acknowledged")

    def tick(self) -> None:
        self.states.tick()
        self.alarms.tick()

    def stop(self, t: int) -> None:
        """A handover: every open interval and downtime event closed at ``t`` (end reason "stop"), alarm states
        written."""
        self.states.stop(t)
        self.alarms.flush()


@dataclass
class Tenure:
    """One span of one worker running one site's engines (for the health and the tests)."""

    site: str
    start_us: int
    end_us: int | None = None
    how: str = ""  # "handover" (released) or "lost"


@dataclass
class EngineHost:
    """The engines of the sites one worker owns (the worker's lease hooks)."""

    plant: Plant
    store: Store
    tag_ids: Mapping[str, int]
    valid: Callable[[str], bool] = lambda _site: True
    #: where an engine record the store refuses for good is kept (``recorder-failed.jsonl``)
    dead_letter: Path | None = None
    now: Callable[[], int] = now_us
    running: dict[str, SiteEngines] = field(default_factory=dict)
    tenures: list[Tenure] = field(default_factory=list)
    errors: int = 0
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _ticker: asyncio.Task[None] | None = None

    def _lock(self, site: str) -> asyncio.Lock:
        return self._locks.setdefault(site, asyncio.Lock())

    async def on_acquire(self, site: str) -> None:
        async with self._lock(site):
            eng = SiteEngines(self.plant, site, self.store, self.tag_ids, self.now, self.dead_letter)
            t = self.now()
            await asyncio.to_thread(eng.start, t)
            self.running[site] = eng
            self.tenures.append(Tenure(site, t))
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_loop(), name="ingest-engines-tick")

    async def on_release(self, site: str) -> None:
        """The site is given up (a clean stop, or to balance the sites): stop its engines cleanly."""
        async with self._lock(site):
            eng = self.running.pop(site, None)
            if eng is not None:
                t = self.now()
                await asyncio.to_thread(eng.stop, t)
                self._ended(site, "handover", t)

    async def on_lost(self, site: str) -> None:
        """The lease lapsed or moved: this worker may not write for the site any more; drop its engines."""
        async with self._lock(site):
            if self.running.pop(site, None) is not None:
                log.warning("engines of site %s dropped: the lease was lost (the next owner recovers them)", site)
                self._ended(site, "lost", self.now())

    async def on_stored(self, site: str, batches: Sequence[pa.RecordBatch]) -> None:
        async with self._lock(site):
            eng = self.running.get(site)
            if eng is not None and self.valid(site):
                await asyncio.to_thread(eng.feed, batches)

    def _ended(self, site: str, how: str, end_us: int) -> None:
        for t in reversed(self.tenures):
            if t.site == site and t.end_us is None:
                t.end_us, t.how = end_us, how
                break

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            for site in list(self.running):
                async with self._lock(site):
                    eng = self.running.get(site)
                    if eng is None or not self.valid(site):
                        continue
                    try:
                        await asyncio.to_thread(eng.tick)
                    except Exception:
                        self.errors += 1
                        log.exception("engines of site %s: a tick failed", site)

    async def close(self) -> None:
        """After the worker released its leases: stop the ticks (engines still running are dropped, not closed)."""
        await cancel_and_wait([self._ticker], "ingest engines")
        self._ticker = None
        self.running.clear()

    def status(self) -> dict[str, Any]:
        return {"sites": sorted(self.running), "errors": self.errors,
                "recorder": {s: e.recorder.status() for s, e in self.running.items()}}
