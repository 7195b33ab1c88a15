"""The demo restarted twice on one data directory: every scope's parts and OEE against the simulator's own counts.

The simulated PLCs keep their counters across restarts (as real ones do while plantlink restarts), and count
on while plantlink is down. To compare exactly, the test holds the simulated clock while plantlink starts and
stops: plantlink's first reading of a run is taken while the machines stand still (so it is exactly the
simulator's counter at the run's start), and the run ends only once plantlink has read the counters the
machines stopped at. Then, per machine:

* parts (PQ, GQ, SQ) = the sum over runs of what the simulator counted while plantlink ran, exactly;
* unattributed = what the simulator counted while plantlink was down (before runs 2 and 3), exactly;
* OEE = A x E x QR with those counts, and the running time plantlink measured agrees with the simulator's own
  ledger of seconds in ``running`` within the latency of state detection (justified below).

Before the fix, run 2 counted the counter's whole value as parts since a reset, or (counters kept) the parts
made while plantlink was down as made in its run: effectiveness far above 1.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plantlink.api import queries
from plantlink.app import ServeOptions, run_demo
from plantlink.connectors.base import DeviceState
from plantlink.engines.calendar import PlannedTime
from plantlink.identity import Principal
from plantlink.runtime import Runtime
from plantlink.samples import now_us
from plantlink.sim import Simulator, State

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-plant.yaml"
READER = Principal("test", {"*": "viewer"})
RUN_S = 8.0  # seconds the simulated clock runs in each run of plantlink (speed 1)
DOWN_STEPS = (0, 1500, 900)  # steps of 0.1 s the PLCs count on while plantlink is down, before each run
#: Steps of 0.1 s taken at once right after plantlink read its baseline: every machine makes parts while it is
#: watched, the OPC UA ones (welder 48 s, oven 20 s a part) too, whose values keep the time they changed: after
#: a restart the first one plantlink reads may be stamped before its start.
WATCH_STEPS = 600
#: Each state change reaches plantlink one poll (Windsor 0.5 s, Detroit 1 s) plus processing late, and the
#: simulated clock steps every 0.1 s: each change into or out of running moves APT by less than this.
LATENCY_S = 2.0
SYNC_S = 90.0  # generous bound on waits for plantlink to read what the simulator shows (a loaded machine)


@dataclass
class Run:
    at_start: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # (cycles, good, rejects)
    at_stop: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    running_s: dict[str, float] = field(default_factory=dict)  # the simulator's seconds in running
    changes: dict[str, int] = field(default_factory=dict)
    began_us: int = 0  # plantlink started (the hook is called)
    resumed_us: int = 0
    paused_us: int = 0
    ended_us: int = 0  # after the demo returned: plantlink has stopped


def counts(sim: Simulator) -> dict[str, tuple[int, int, int]]:
    return {p: (m.cycles, m.good, m.rejects) for p, m in sim.sim.machines.items()}


def ledger(sim: Simulator) -> dict[str, tuple[float, int]]:
    return {p: (m.seconds[State.RUNNING], m.changes) for p, m in sim.sim.machines.items()}


def counter_tags(rt: Runtime) -> dict[str, tuple[str, str]]:
    """Counter tag path -> (machine path, which simulator counter it shows)."""
    out = {}
    for path, m in rt.plant.machines():
        if m.production is None:
            continue
        prod = m.production
        for name in (prod.produced, prod.good, prod.reject):
            if name is not None:
                out[f"{path}/{name}"] = (path, name)
    return out


async def synced(rt: Runtime, sim: Simulator) -> None:
    """Until every device is connected and has delivered, plantlink's latest value of every counter is what the
    (paused) simulator shows, and that sample is in the historian's stored history (flushed)."""
    h = rt.historian
    assert h is not None
    tags = counter_tags(rt)
    ids = [rt.tag_ids[t] for t in tags]
    deadline = time.monotonic() + SYNC_S
    while True:
        up = all(c.health.state == DeviceState.CONNECTED and c.health.samples > 0 for c in rt.connectors.values())
        latest = h.latest(ids)
        values, ts = latest.column("value").to_pylist(), latest.column("ts").cast("int64").to_pylist()
        shown = sim.snapshot()
        if up and all(v is not None and v == float(shown[t]) for t, v in zip(tags, values, strict=True)) and all(
                h.raw(i, t, t + 1, 1).num_rows == 1 for i, t in zip(ids, ts, strict=True)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"plantlink did not read the simulator's counters within {SYNC_S} s")
        await asyncio.sleep(0.05)


class Session:
    """One run of the demo: hold the clock, let plantlink read, run the clock RUN_S, hold, let it read."""

    def __init__(self, run: Run, down_steps: int, figures: dict[str, Any] | None, begin_us: int):
        self.run, self.down_steps, self.figures, self.begin_us = run, down_steps, figures, begin_us

    async def simulator_started(self, simulator: Simulator) -> None:
        await simulator.pause()
        if self.down_steps:
            await simulator.advance(self.down_steps)  # the PLCs count on while plantlink is down
        self.run.at_start = counts(simulator)

    async def running(self, runtime: Runtime, simulator: Simulator) -> None:
        self.run.began_us = now_us()
        await synced(runtime, simulator)  # plantlink's baseline is the simulator's counter at the start
        jump = ledger(simulator)
        await simulator.advance(WATCH_STEPS)  # parts at once (not in the running-time check: no wall time)
        before = ledger(simulator)
        self.run.resumed_us = now_us()
        simulator.resume()
        await asyncio.sleep(RUN_S)
        await simulator.pause()
        self.run.paused_us = now_us()
        await synced(runtime, simulator)
        self.run.at_stop = counts(simulator)
        after = ledger(simulator)
        self.run.running_s = {p: after[p][0] - before[p][0] for p in after}
        self.run.changes = {p: after[p][1] - jump[p][1] for p in after}
        if self.figures is not None:  # the last run: plantlink's figures over all three runs
            end = now_us()
            for scope in scopes(runtime):
                self.figures[scope] = await asyncio.to_thread(queries.oee, runtime, READER, scope, self.begin_us, end)


def scopes(rt: Runtime) -> list[str]:
    """Every machine with production counters, the lines and sites that have some."""
    machines = [p for p, m in rt.plant.machines() if m.production is not None]
    lines = sorted({p.rsplit("/", 1)[0] for p in machines})
    sites = sorted({p.split("/", 1)[0] for p in machines})
    return machines + lines + sites


def expected(runs: list[Run], machines: list[str]) -> tuple[list[float], list[float]]:
    """(PQ, GQ, SQ) counted while plantlink ran and (produced, good, scrap) counted while it was down."""
    made = [0.0, 0.0, 0.0]
    down = [0.0, 0.0, 0.0]
    for k, r in enumerate(runs):
        for m in machines:
            for i in range(3):
                made[i] += r.at_stop[m][i] - r.at_start[m][i]
                if k:
                    down[i] += r.at_start[m][i] - runs[k - 1].at_stop[m][i]
    return made, down


@pytest.mark.timeout(900)  # three starts of the demo on a loaded machine
async def test_demo_restarted_twice_counts_what_the_simulator_counted(tmp_path: Path) -> None:
    runs = [Run() for _ in DOWN_STEPS]
    figures: dict[str, Any] = {}
    begin = now_us()
    for k, steps in enumerate(DOWN_STEPS):
        session = Session(runs[k], steps, figures if k == len(DOWN_STEPS) - 1 else None, begin)
        await run_demo(DEMO, tmp_path, speed=1.0, announce=False, serve=ServeOptions(api=False), hooks=session)
        runs[k].ended_us = now_us()
    assert (tmp_path / "sim-state.json").is_file()

    from plantlink.model import load_plant

    plant = load_plant(DEMO)
    pri = {p: m.production.ideal_cycle_time for p, m in plant.machines() if m.production is not None}
    planned = {s.name: PlannedTime.of_site(s) for s in plant.sites}
    assert set(figures) == {*pri, *{p.rsplit("/", 1)[0] for p in pri}, "windsor", "detroit"}
    for scope, got in figures.items():
        machines = [m for m in pri if m == scope or m.startswith(scope + "/")]
        (pq, gq, sq), (gap_pq, gap_gq, gap_sq) = expected(runs, machines)
        ins = got["inputs"]
        assert (ins["pq"], ins["gq"], ins["sq"]) == (pq, gq, sq), scope
        assert got["unattributed"] == {"produced": gap_pq, "good": gap_gq, "scrap": gap_sq, "counter_resets": 0}, \
            scope
        # the OEE is built from those counts, with plantlink's times (the parts made at once have no running
        # time: effectiveness may well be above 1 here, it is not what this test is about)
        if ins["pbt_s"] > 0 and ins["apt_s"] > 0 and pq > 0:
            ideal = sum(pri[m] * sum(r.at_stop[m][0] - r.at_start[m][0] for r in runs) for m in machines)
            want = ins["apt_s"] / ins["pbt_s"] * ideal / ins["apt_s"] * gq / pq
            assert got["oee"] == pytest.approx(want, rel=1e-9), scope
        else:
            assert got["oee"] is None, scope
    assert sum(figures[s]["unattributed"]["produced"] for s in ("windsor", "detroit")) > 0  # the PLCs counted on
    for m in pri:
        check_running_time(m, figures[m]["inputs"]["apt_s"], runs, planned[m.split("/", 1)[0]])


def check_running_time(machine: str, apt_s: float, runs: list[Run], planned: PlannedTime) -> None:
    """plantlink's running time against the simulator's ledger. Within a run, plantlink watched the machines
    stand still (the clock held) for at most (resumed - began) + (ended - paused): a machine standing still in
    running adds that to APT but not to the simulator's seconds. Each change into or out of running, and each
    run's two edges, shift APT by less than LATENCY_S."""
    spans = [(r.began_us, r.ended_us) for r in runs]
    planned_s = sum(planned.planned_seconds(a, b) for a, b in spans)
    if planned_s == 0:  # outside the site's shifts: planned_stop, no running time counts
        assert apt_s == 0, machine
        return
    if planned_s < sum(b - a for a, b in spans) / 1e6:
        return  # a shift began or ended during the test: the simulator's ledger knows no calendar
    sim_s = sum(r.running_s[machine] for r in runs)
    held_s = sum((r.resumed_us - r.began_us) + (r.ended_us - r.paused_us) for r in runs) / 1e6
    slack = LATENCY_S * sum(r.changes[machine] + 2 for r in runs)
    assert sim_s - slack <= apt_s <= sim_s + held_s + slack, (machine, apt_s, sim_s, held_s, slack)


PRESS = "windsor/stamping/press-line-1/press1"
WINDOW_S = 6.0  # seconds of production before and after the disconnection
OFFLINE_STEPS = 3000  # 300 s of the press counting while plantlink cannot read it


class Disconnect:
    """One run: produce, take the press's Modbus server away while the press counts on, bring it back, produce."""

    def __init__(self) -> None:
        self.marks: list[dict[str, tuple[int, int, int]]] = []
        self.running_s = 0.0
        self.figures: dict[str, Any] = {}

    async def simulator_started(self, simulator: Simulator) -> None:
        await simulator.pause()

    async def window(self, runtime: Runtime, simulator: Simulator) -> None:
        before = ledger(simulator)[PRESS][0]
        simulator.resume()
        await asyncio.sleep(WINDOW_S)
        await simulator.pause()
        await synced(runtime, simulator)
        self.running_s += ledger(simulator)[PRESS][0] - before

    async def running(self, runtime: Runtime, simulator: Simulator) -> None:
        begin = now_us()
        await synced(runtime, simulator)
        self.marks.append(counts(simulator))
        await self.window(runtime, simulator)
        self.marks.append(counts(simulator))
        server = simulator.servers["sim-modbus"]
        await server.stop()
        conn = runtime.connectors["sim-modbus"]
        assert runtime.historian is not None
        tid = runtime.tag_ids[f"{PRESS}/cycle_count"]
        deadline = time.monotonic() + SYNC_S
        while conn.health.state == DeviceState.CONNECTED or runtime.historian.latest([tid]).column(
                "quality").to_pylist() != [0]:
            assert time.monotonic() < deadline, "plantlink did not notice the device went away"
            await asyncio.sleep(0.05)
        await simulator.advance(OFFLINE_STEPS)  # the press counts on; nobody reads it
        self.marks.append(counts(simulator))
        await server.start()  # the same port: plantlink reconnects
        await synced(runtime, simulator)
        await self.window(runtime, simulator)
        self.marks.append(counts(simulator))
        self.figures = await asyncio.to_thread(queries.oee, runtime, READER, PRESS, begin, now_us())


@pytest.mark.timeout(600)
async def test_parts_counted_while_a_device_was_disconnected_are_gap_quantity(tmp_path: Path) -> None:
    d = Disconnect()
    await run_demo(DEMO, tmp_path, speed=1.0, announce=False, serve=ServeOptions(api=False), hooks=d)
    start, before, away, back = d.marks[0][PRESS], d.marks[1][PRESS], d.marks[2][PRESS], d.marks[3][PRESS]
    o = d.figures
    made = [before[i] - start[i] + back[i] - away[i] for i in range(3)]
    offline = [away[i] - before[i] for i in range(3)]
    assert offline[0] > 0  # the press did count while disconnected
    assert (o["inputs"]["pq"], o["inputs"]["gq"], o["inputs"]["sq"]) == tuple(made)
    assert o["unattributed"] == {"produced": offline[0], "good": offline[1], "scrap": offline[2],
                                 "counter_resets": 0}
    # effectiveness is what the press did in the time plantlink saw it run: at most one part per production
    # window may have been begun before it (the simulator carries a cycle's progress). Counting the parts made
    # while disconnected would put it near (offline + made) x 3.75 s / APT, far above 1.
    apt, pri = o["inputs"]["apt_s"], 3.75
    assert apt >= d.running_s - 2 * LATENCY_S
    if made[0]:
        assert o["effectiveness"] is not None and o["effectiveness"] <= 1 + 2 * pri / apt, o
