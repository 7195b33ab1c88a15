"""The simulator serves a machine as a Logix controller (cm-ethernetip): the Logix connector reads what the
simulation holds (its encoder and the connector's decoding written apart) and its writes reach the machine."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from plantlink.connectors.base import DeviceState
from plantlink.connectors.logix import LogixConnector
from plantlink.model import parse_plant
from plantlink.samples import Quality
from plantlink.sim import Simulator
from tests.conftest import _free_port
from tests.connectors.modbus_cases import Collector, points_of
from tests.waiting import wait_for

PLANT = """
enterprise: Test
devices:
  press-plc: {{protocol: logix, host: 127.0.0.1, port: {port}, poll: 50ms, timeout: 1s}}
sites:
  - name: s
    timezone: UTC
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: press1
                kind: press
                tags:
                  - {{name: state, type: int, source: {{device: press-plc, tag: Press.State, type: INT}}}}
                  - {{name: cycle_count, type: int, source: {{device: press-plc, tag: 'Counters[1]', type: DINT}}}}
                  - {{name: tonnage, unit: t, source: {{device: press-plc, tag: 'Program:Press.Tonnage',
                     type: REAL}}}}
                  - {{name: energy_kwh, source: {{device: press-plc, tag: EnergyKwh, type: LREAL}}}}
                  - {{name: fault, type: bool, source: {{device: press-plc, tag: Fault, type: BOOL}}}}
                  - {{name: part_number, type: string, source: {{device: press-plc, tag: PartNumber, type: STRING}}}}
                  - {{name: spm_setpoint, writable: true, source: {{device: press-plc, tag: SpmSetpoint, type: REAL}}}}
                  - {{name: run_command, type: bool, writable: true, source: {{device: press-plc, tag: RunCmd,
                     type: BOOL}}}}
"""
PRESS = "s/a/l/press1"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(parse_plant(PLANT.format(port=_free_port())), seed=3, speed=1.0)
    await s.start()
    yield s
    await s.stop()


async def test_the_connector_reads_what_the_simulated_press_holds(sim: Simulator) -> None:
    assert sim.endpoints()["press-plc"].startswith("logix://127.0.0.1:")
    plant = sim.plant
    sink = Collector()
    conn = LogixConnector("press-plc", plant.devices["press-plc"].config, points_of(plant, "press-plc"), sink)
    await sim.pause()
    await sim.publish()
    want = sim.snapshot()
    ctl = sim.servers["press-plc"].controller  # type: ignore[union-attr]
    (tonnage,) = struct.unpack("<f", ctl.raw("Program:Press.Tonnage"))  # independent of both encoders
    assert tonnage == pytest.approx(float(want[f"{PRESS}/tonnage"]), rel=1e-6)  # type: ignore[arg-type]
    await conn.start()
    try:
        ids = {p.tag_id: p.path for p in conn.points}
        await wait_for(lambda: len(sink.latest()) == len(ids) and conn.health.state == DeviceState.CONNECTED)
        got = {ids[t]: v for t, v in sink.latest().items()}
        assert all(q == Quality.GOOD for _, q in got.values()), got
        for path, (value, _) in got.items():
            expect = want[path]
            if isinstance(expect, str):
                assert value == expect, path
            elif path.endswith("tonnage") or path.endswith("setpoint"):
                assert value == pytest.approx(float(expect), rel=1e-6), path  # REAL: single precision
            else:
                assert value == pytest.approx(float(expect)), path
        sim.resume()
        sp = next(p for p in conn.points if p.path.endswith("spm_setpoint"))
        run = next(p for p in conn.points if p.path.endswith("run_command"))
        await conn.write(sp, 12.5)
        await wait_for(lambda: sim.snapshot()[sp.path] == pytest.approx(12.5))
        await conn.write(run, False)
        await wait_for(lambda: sim.snapshot()[run.path] is False)
    finally:
        await conn.stop()
