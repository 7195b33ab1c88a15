"""A few hours of plausible history written before the runtime starts, with answers known by construction.

For ``HOURS`` hours up to a minute ago, on every line:

* the first machine runs 34 min then is faulted 6 min, over and over: it never waits (faulted is active), so
  it has ONE active period and constrains the line by the active-period method;
* every other machine runs 30 min then is starved 10 min: its active periods last 30 min;
* each stop is a downtime event; the first machine's faults get reasons (the first reason of the line's first
  group), the starved stops none.

Production counters get one sample a minute, advancing at 92 % of the ideal rate while the machine runs
(1.5 % rejects), and ending at the value the simulator shows now, so that the live readings continue them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plantlink.engines.calendar import PlannedTime
from plantlink.historian import TagMeta, default_path, open_historian
from plantlink.model import Plant
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.sim import Simulator
from plantlink.store import Store, default_url

HOURS = 4
MIN_US = 60 * 1_000_000
CYCLE = 40  # minutes
RATE = 0.92
REJECT = 0.015


@dataclass
class Seeded:
    start_us: int = 0
    end_us: int = 0
    #: machine path -> ids of its downtime events (oldest first)
    events: dict[str, list[int]] = field(default_factory=dict)
    reasons: dict[int, tuple[str, str]] = field(default_factory=dict)


def _pattern(first: bool) -> tuple[int, str]:
    """(minutes running per cycle, stop state)."""
    return (34, "faulted") if first else (30, "starved")


def seed(plant: Plant, data_dir: Path, sim: Simulator, out: Seeded) -> None:
    end = now_us() - MIN_US
    start = end - HOURS * 60 * MIN_US
    out.start_us, out.end_us = start, end
    out.events.clear()  # a later module's server seeds afresh
    out.reasons.clear()
    planned = {s.name: PlannedTime.of_site(s) for s in plant.sites}
    store = Store.open(default_url(data_dir))
    try:
        for s in plant.sites:
            for a in s.areas:
                for ln in a.lines:
                    line = f"{s.name}/{a.name}/{ln.name}"
                    tree = ln.downtime.reasons
                    for i, m in enumerate(ln.machines):
                        if m.states is None:
                            continue
                        run, stop = _pattern(i == 0)
                        reason = (tree[0].name, tree[0].reasons[0]) if tree and i == 0 else None
                        _states(store, planned[s.name], f"{line}/{m.name}", line, s.name, start, end, run, stop,
                                reason, out)
    finally:
        store.close()
    _counters(plant, data_dir, sim, start, end)


def _shift(planned: PlannedTime, t: int) -> str | None:
    span = planned.shift_at(t)
    return None if span is None else str(span.name)


def _states(store: Store, planned: PlannedTime, machine: str, line: str, site: str, start: int, end: int,
            run: int, stop: str, reason: tuple[str, str] | None, out: Seeded) -> None:
    t = start
    while t < end:
        stop_at = min(t + run * MIN_US, end)
        store.open_interval(machine, line, "running", t, _shift(planned, t))
        nxt = min(t + CYCLE * MIN_US, end)
        if stop_at < nxt:
            store.open_interval(machine, line, stop, stop_at, _shift(planned, stop_at))
            ev = store.open_event(machine, line, site, stop_at, stop, _shift(planned, stop_at))
            store.close_event(ev, nxt, stop, micro=False)
            out.events.setdefault(machine, []).append(ev)
            if reason is not None:
                store.set_reason(ev, reason[0], reason[1], "seed", nxt)
                out.reasons[ev] = reason
        t = nxt
    store.close_interval(machine, end)


def _running_minutes(first: bool, n: int) -> np.ndarray:
    run, _ = _pattern(first)
    return (np.arange(n) % CYCLE) < run


def _counters(plant: Plant, data_dir: Path, sim: Simulator, start: int, end: int) -> None:
    hist = open_historian("duckdb", path=default_path(data_dir))
    try:
        ids = hist.register_tags([TagMeta(t.path, t.tag.unit, t.tag.type) for t in plant.tags])
        now_values = sim.snapshot()
        n = (end - start) // MIN_US
        ts = start + MIN_US * np.arange(1, n + 1, dtype=np.int64)
        for s in plant.sites:
            for a in s.areas:
                for ln in a.lines:
                    for i, m in enumerate(ln.machines):
                        prod = m.production
                        if prod is None:
                            continue
                        path = f"{s.name}/{a.name}/{ln.name}/{m.name}"
                        made = np.floor(np.cumsum(_running_minutes(i == 0, n) * RATE * 60 / prod.ideal_cycle_time))
                        bad = np.floor(made * REJECT)
                        series = {prod.produced: made, prod.good: made - bad, prod.reject: bad}
                        for name, cum in series.items():
                            if name is None:
                                continue
                            last = float(now_values.get(f"{path}/{name}", cum[-1]) or 0.0)
                            values = np.maximum(last - (cum[-1] - cum), 0.0)
                            hist.write(numeric_batch(np.full(n, ids[f"{path}/{name}"]), ts, values, Quality.GOOD))
        hist.flush()
    finally:
        hist.close()
