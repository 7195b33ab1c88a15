"""The live hub: ONE task per process reads the latest-value cache and the machine states, so that the cost of
a browser is only what changed for the elements it shows.

Every ``interval`` seconds the hub reads the runtime's one bus-fed latest values (``services.latest``, which
the control path, the live stream and ``/tags/latest`` read too: the HMI no longer polls the historian) and the
state engine's current states, and stamps what changed with its tick number; nothing is read when no batch
arrived since the last look. A page's timer asks
``changed_tags(ids, since)`` (one numpy comparison) and redraws only those. OEE and costs of the day are
recomputed every ``kpi_interval`` seconds in a worker thread, only while some page asked for them recently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from plantlink.hmi import data
from plantlink.samples import value_reasons
from plantlink.tasks import cancel_and_wait

if TYPE_CHECKING:
    from plantlink.hmi.data import Kpi, PlantView

log = logging.getLogger("plantlink.hmi.live")

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Sample:
    """A tag's latest value as pages show it. ``value`` is None when there is no number to show, and
    ``reason`` then says why: ``nan``, ``+inf``, ``-inf`` or ``null`` (the device sent no value)."""

    value: float | str | None
    quality: int | None
    ts_us: int | None
    reason: str | None = None


EMPTY = Sample(None, None, None)


class LiveHub:
    def __init__(self, view: PlantView, interval: float = 0.2, kpi_interval: float = 10.0):
        self.view = view
        self.interval = interval
        self.kpi_interval = kpi_interval
        self.tick = 0
        self._seen = -1  # the latest values' tick at the last refresh
        ids = sorted(t.tag_id for t in view.tags.values())
        self.ids = np.array(ids, dtype=np.int64)
        size = (max(ids) + 1) if ids else 1
        self._ts = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
        self.value_tick = np.zeros(size, dtype=np.int64)
        self.values: dict[int, Sample] = {}
        self.states: dict[str, tuple[str, int]] = {}
        self.state_tick: dict[str, int] = {}
        self.kpis: dict[str, Kpi | None] = {}
        self.kpi_tick = 0
        self.kpi_at = 0.0
        self._demand = 0.0
        self._task: asyncio.Task[None] | None = None
        self._kpi_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the refresh loop on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self.refresh()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="hmi-live-hub")

    async def stop(self) -> None:
        await cancel_and_wait([self._task, self._kpi_task], "HMI live hub")
        self._task = self._kpi_task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.refresh()
                self._maybe_kpis()
            except Exception:  # a failing read must not stop live updates for good
                log.exception("live hub refresh failed")

    # -- live values and states ------------------------------------------------------------------
    def refresh(self) -> None:
        """Fold the latest values and states in; a new tick when anything changed."""
        latest = self.view.services.latest
        changed_tags = None
        if latest.tick != self._seen:
            self._seen = latest.tick
            changed_tags = self._changed_values(latest.table(self.ids))
        states = data.machine_states(self.view.services)
        moved = [p for p, st in states.items() if self.states.get(p) != st]
        if (changed_tags is None or changed_tags.size == 0) and not moved:
            return
        self.tick += 1
        if changed_tags is not None and changed_tags.size:
            self.value_tick[changed_tags] = self.tick
        for p in moved:
            self.state_tick[p] = self.tick
        self.states = states

    def _changed_values(self, table: object) -> IntArray:
        import pyarrow as pa

        assert isinstance(table, pa.Table)
        if table.num_rows == 0:
            return np.zeros(0, dtype=np.int64)
        tid = table.column("tag_id").to_numpy(zero_copy_only=False).astype(np.int64)
        ts = table.column("ts").cast(pa.int64()).fill_null(np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
        ok = tid < self._ts.size
        # changed, not only newer: the latest value is the last to arrive, whatever its timestamp
        changed = ok & (ts != np.where(ok, self._ts[np.minimum(tid, self._ts.size - 1)], 0))
        rows = np.flatnonzero(changed)
        if rows.size == 0:
            return np.zeros(0, dtype=np.int64)
        sub = table.take(pa.array(rows))
        values = sub.column("value").to_pylist()
        reasons = value_reasons(sub.column("value"))
        why = reasons.tolist() if reasons is not None else [None] * rows.size
        texts = sub.column("text").to_pylist() if "text" in sub.column_names else [None] * rows.size
        quals = sub.column("quality").to_pylist()
        for i, t in enumerate(tid[rows].tolist()):
            if texts[i] is not None:
                self.values[t] = Sample(texts[i], quals[i], int(ts[rows[i]]))
                continue
            v = values[i] if why[i] is None else None
            self.values[t] = Sample(v, quals[i], int(ts[rows[i]]), why[i] if quals[i] is not None else None)
        self._ts[tid[rows]] = ts[rows]
        return np.asarray(tid[rows], dtype=np.int64)

    def changed_tags(self, ids: IntArray, since: int) -> IntArray:
        """Which of ``ids`` changed after tick ``since``."""
        if ids.size == 0:
            return ids
        return ids[self.value_tick[ids] > since]

    def sample(self, tag_id: int) -> Sample:
        return self.values.get(tag_id, EMPTY)

    def state(self, machine: str) -> str | None:
        st = self.states.get(machine)
        return None if st is None else st[0]

    # -- KPIs of the day --------------------------------------------------------------------------
    def want_kpis(self) -> None:
        """Called by pages that show KPIs: keeps the (costly) KPI refresh going while someone looks."""
        self._demand = time.monotonic()
        if not self.kpis:
            self._maybe_kpis(force=True)

    def _maybe_kpis(self, force: bool = False) -> None:
        now = time.monotonic()
        busy = self._kpi_task is not None and not self._kpi_task.done()
        idle = now - self._demand > 3 * self.kpi_interval
        if busy or (not force and (idle or now - self.kpi_at < self.kpi_interval)):
            return
        self.kpi_at = now
        self._kpi_task = asyncio.get_running_loop().create_task(self._refresh_kpis())

    async def _refresh_kpis(self) -> None:
        try:
            kpis = await asyncio.to_thread(compute_kpis, self.view)
        except Exception:
            log.exception("could not compute the KPIs of the day")
            return
        self.kpis = kpis
        self.kpi_tick += 1


def compute_kpis(view: PlantView) -> dict[str, Kpi | None]:
    """Today's KPIs (site-local day) of every machine and line, keyed by path."""
    out: dict[str, Kpi | None] = {}
    for site in view.sites:
        start, end = view.period(site.name, "today")
        for ln in site.lines:
            out.update(data.line_kpis(view, ln, start, end))
    return out
