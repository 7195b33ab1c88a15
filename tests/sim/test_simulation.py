"""The simulated plant without servers: determinism, state machine, oven lag, bearing wear, commands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from plantlink.errors import ConfigError
from plantlink.model import Plant, load_plant, parse_plant
from plantlink.sim import STATE_NAMES, PlantSim, State, signal_names
from plantlink.sim.kinds import BEARING_FAILURE, Cnc, Oven

DEMO = Path(__file__).parents[2] / "examples" / "demo-plant.yaml"
PRESS = "windsor/stamping/press-line-1/press1"
CONV1 = "windsor/stamping/press-line-1/conveyor1"
OVEN = "windsor/body-paint/body-line-1/oven1"
WRAP = 2**32


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(DEMO)


def trajectory(plant: Plant, seed: int, steps: int, dt: float = 1.0) -> list[list[object]]:
    sim = PlantSim(plant, seed=seed)
    out = []
    for i in range(steps):
        if i == steps // 2:
            sim.write(f"{OVEN}/zone2_setpoint", 205.0)
        sim.step(dt)
        out.append(list(sim.snapshot().values()))
    return out


def test_same_seed_same_values_different_seed_different(plant: Plant) -> None:
    a = trajectory(plant, 7, 1500)
    b = trajectory(plant, 7, 1500)
    c = trajectory(plant, 8, 1500)
    assert a == b
    assert a != c
    # not only the random initial counters differ: the process noise does too
    assert sum(x != y for x, y in zip(a[-1], c[-1], strict=True)) > 20


def test_state_machine_over_three_simulated_days(plant: Plant) -> None:
    sim = PlantSim(plant, seed=11)
    paths = list(sim.machines)
    seen: dict[str, set[int]] = {p: set() for p in paths}
    prev = {p: dict(sim.machine(p).values) for p in paths}
    dt = 10.0
    for _ in range(3 * 86400 // int(dt)):
        sim.step(dt)
        for p in paths:
            v = sim.machine(p).values
            seen[p].add(int(v["state"]))
            assert v["state_name"] == STATE_NAMES[int(v["state"])]
            assert v["fault"] == (v["state"] == State.FAULTED) == (v["fault_code"] != 0)
            assert float(v["energy_kwh"]) >= float(prev[p]["energy_kwh"])
            for counter in ("cycle_count", "good_count", "reject_count"):
                grew = (int(v[counter]) - int(prev[p][counter])) % WRAP
                assert 0 <= grew < 1000, (p, counter)  # monotonic modulo 2**32, a few parts per step at most
            assert (int(v["good_count"]) + int(v["reject_count"])) % WRAP == int(v["cycle_count"])
            assert int(v["reject_count"]) <= int(v["cycle_count"])
            prev[p] = dict(v)
    assert set().union(*seen.values()) == set(range(7))
    for p in paths:
        expected = {State.RUNNING, State.FAULTED, State.PLANNED_STOP, State.IDLE}
        if sim.machine(p).kind != "conveyor":
            expected |= {State.CHANGEOVER}
        assert expected <= seen[p], (p, seen[p])


def test_counters_wrap_at_32_bits(plant: Plant) -> None:
    sim = PlantSim(plant, seed=1)
    press = sim.machine(PRESS)
    press.mtbf_s = math.inf
    press.cycles, press.good, press.rejects = WRAP - 2, WRAP - 2, 0
    sim.step(1.0, 60)  # 16 strokes a minute
    assert press.cycles > WRAP
    assert sim.value(f"{PRESS}/cycle_count") == press.cycles - WRAP < 30


def test_oven_zone_follows_new_setpoint_with_first_order_lag(plant: Plant) -> None:
    sim = PlantSim(plant, seed=4)
    oven = sim.machine(OVEN)
    assert isinstance(oven, Oven)
    oven.mtbf_s = math.inf
    sim.step(1.0, 30)
    t0_temp, sp = oven.temps[1], 230.0
    sim.write(f"{OVEN}/zone2_setpoint", sp)
    times, measured = [], []
    for k in range(1, 1801):
        sim.step(1.0)
        times.append(float(k))
        measured.append(float(sim.value(f"{OVEN}/zone2_temperature")))
    tau = oven.tau[1]
    expected = sp + (t0_temp - sp) * np.exp(-np.array(times) / tau)
    err = np.abs(np.array(measured) - expected)
    assert err.max() < 1.5  # measurement noise is 0.25 degC
    # the time constant fitted from the data (log-linear) matches the zone's
    gap = sp - np.array(measured[:600])
    slope = np.polyfit(times[:600], np.log(gap), 1)[0]
    assert -1.0 / slope == pytest.approx(tau, rel=0.05)
    assert 300.0 <= tau <= 400.0
    assert sim.value(f"{OVEN}/zone2_setpoint") == sp


def test_oven_setpoints_are_clamped_and_stop_cools_to_ambient(plant: Plant) -> None:
    sim = PlantSim(plant, seed=4)
    oven = sim.machine(OVEN)
    oven.mtbf_s = math.inf
    sim.write(f"{OVEN}/zone1_setpoint", 900.0)
    sim.step(1.0)
    assert sim.value(f"{OVEN}/zone1_setpoint") == 260.0
    sim.write(f"{OVEN}/run_command", False)
    sim.step(10.0, 3 * 360)
    assert sim.value(f"{OVEN}/state") == State.PLANNED_STOP
    assert float(sim.value(f"{OVEN}/zone1_temperature")) < 30.0
    assert sim.value(f"{OVEN}/gas_flow") == 0.0


def test_cnc_bearing_wears_until_failure_then_resets_after_repair() -> None:
    cnc = Cnc("test/cnc", np.random.default_rng(5))
    cnc.mtbf_s = math.inf  # only the wear can fail it here
    dt, t = 60.0, 0.0
    running_vib: list[tuple[float, float]] = []
    failed_at = None
    while t < 20 * 86400:
        cnc.step(dt, t)
        t += dt
        if cnc.state == State.RUNNING and cnc.rpm > 7000:
            running_vib.append((t, float(cnc.values["vibration"])))
        if cnc.fault_code == BEARING_FAILURE:
            failed_at = t
            break
    assert failed_at is not None and failed_at > 2 * 86400
    vib = np.array(running_vib)
    first_day = vib[vib[:, 0] < vib[0, 0] + 86400, 1].mean()
    last_hours = vib[vib[:, 0] > failed_at - 6 * 3600, 1].mean()
    assert last_hours > 3 * first_day
    assert last_hours > 7.1  # past the ISO 10816 alarm before it fails
    # the repair (bearing replacement) takes hours; afterwards vibration is back to baseline
    repair_steps = 0
    while cnc.state == State.FAULTED:
        cnc.step(dt, t)
        t += dt
        repair_steps += 1
    assert repair_steps * dt > 3600
    assert cnc.wear < 0.01
    after = []
    while len(after) < 50:
        cnc.step(dt, t)
        t += dt
        if cnc.state == State.RUNNING and cnc.rpm > 7000:
            after.append(float(cnc.values["vibration"]))
    assert np.mean(after) < 1.5


def test_stop_and_start_commands(plant: Plant) -> None:
    sim = PlantSim(plant, seed=2)
    for m in sim.machines.values():
        m.mtbf_s = math.inf
    press = sim.machine(PRESS)
    press.lot_done = 0
    sim.step(1.0, 5)
    sim.write(f"{PRESS}/run_command", False)
    assert sim.value(f"{PRESS}/state") == State.RUNNING  # writes apply at the next step
    sim.step(1.0)
    assert sim.value(f"{PRESS}/state") == State.PLANNED_STOP
    count = sim.value(f"{PRESS}/cycle_count")
    sim.step(1.0, 120)
    assert sim.value(f"{PRESS}/cycle_count") == count
    assert sim.value(f"{PRESS}/tonnage") == 0.0
    assert sim.value(f"{PRESS}/run_command") is False
    sim.write(f"{PRESS}/run_command", True)
    sim.step(1.0, 60)
    assert sim.value(f"{PRESS}/state") == State.RUNNING
    assert 10 <= (int(sim.value(f"{PRESS}/cycle_count")) - int(count)) <= 20  # 16 strokes a minute


def test_stopping_the_conveyor_blocks_the_press_upstream(plant: Plant) -> None:
    sim = PlantSim(plant, seed=2)
    for m in sim.machines.values():
        m.mtbf_s = math.inf
    sim.write(f"{CONV1}/run_command", False)
    sim.step(1.0, 3)
    assert sim.value(f"{CONV1}/state") == State.PLANNED_STOP
    assert sim.value(f"{PRESS}/state") == State.BLOCKED
    sim.write(f"{CONV1}/run_command", True)
    sim.step(1.0, 3)
    assert sim.value(f"{PRESS}/state") == State.RUNNING


def test_conveyor_speed_follows_setpoint(plant: Plant) -> None:
    sim = PlantSim(plant, seed=2)
    for m in sim.machines.values():
        m.mtbf_s = math.inf
    sim.write(f"{CONV1}/speed_setpoint", 20.0)
    sim.step(0.1, 300)  # 30 s, 15 time constants
    assert float(sim.value(f"{CONV1}/speed")) == pytest.approx(20.0, abs=0.01)


BAD = """
enterprise: E
devices:
  d: {protocol: opcua, endpoint: "opc.tcp://127.0.0.1:4840/"}
sites:
  - name: s
    timezone: America/Toronto
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: oven1
                kind: oven
                tags:
                  - {name: zone9_temperature, source: {device: d, node: "ns=2;s=A"}}
                  - {name: gas_flow, writable: true, source: {device: d, node: "ns=2;s=B"}}
                  - {name: part_number, type: float, source: {device: d, node: "ns=2;s=C"}}
              - name: arm
                kind: robot
"""


def test_unbindable_tags_give_one_error_naming_each() -> None:
    with pytest.raises(ConfigError) as info:
        PlantSim(parse_plant(BAD, "bad.yaml"))
    problems = {p.path: p.message for p in info.value.problems}
    assert "zone9_temperature" in problems["s/a/l/oven1/zone9_temperature"]
    assert "zone1_temperature" in problems["s/a/l/oven1/zone9_temperature"]  # lists the known names
    assert "read-only" in problems["s/a/l/oven1/gas_flow"]
    assert "string" in problems["s/a/l/oven1/part_number"]
    assert "robot" in problems["s/a/l/arm"]


def test_signal_names_document_the_kinds() -> None:
    assert "vibration" in signal_names("cnc")
    assert {f"zone{i}_setpoint" for i in range(1, 5)} <= set(signal_names("oven"))
    assert "run_command" in signal_names("conveyor")


def test_machines_keep_their_counters_across_a_restart_and_their_own_ledger(plant: Plant) -> None:
    first = PlantSim(plant, seed=1)
    first.step(1.0, 3600)
    kept = first.kept()
    press = first.machine(PRESS)
    assert kept[PRESS] == {"cycles": press.cycles, "good": press.good, "rejects": press.rejects,
                           "energy_kwh": press.energy_kwh}
    # the ledger: every simulated second is in one state, and the running ones made the parts at the cycle
    assert sum(press.seconds) == pytest.approx(3600.0)
    assert press.seconds[State.RUNNING] > 0 and press.changes >= 0
    # a restart from the seed starts the counters elsewhere; restored, they go on from where they were
    again = PlantSim(plant, seed=1)
    assert again.machine(PRESS).cycles != press.cycles
    again.restore(kept | {"nowhere/x/y/z": {"cycles": 1.0}})
    assert again.machine(PRESS).cycles == press.cycles
    assert again.snapshot()[f"{PRESS}/cycle_count"] == press.cycles % WRAP
    again.step(1.0, 60)
    assert again.machine(PRESS).cycles >= press.cycles


async def test_a_paused_simulator_stands_still_and_resumes_without_catching_up(plant: Plant) -> None:
    import asyncio

    from plantlink.sim import Simulator

    sim = Simulator(plant, seed=1, speed=1.0, ports={dev: 0 for dev in plant.devices})
    await sim.start()
    try:
        await sim.pause()
        assert sim.paused
        t = sim.sim_time
        await asyncio.sleep(2.0)
        assert sim.sim_time == t  # no step while paused
        loop = asyncio.get_running_loop()
        resumed = loop.time()
        sim.resume()
        assert not sim.paused
        await asyncio.sleep(0.5)
        # it runs from the resume on: the 2 s paused are not caught up (one tick of 0.1 s of slack)
        assert 0 < sim.sim_time - t <= loop.time() - resumed + 0.1
    finally:
        await sim.stop()
