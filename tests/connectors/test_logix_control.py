"""A governed write to a Logix controller: ControlService (stage, confirm) -> Runtime -> Logix connector ->
cm-ethernetip's tag, where the test finds the bytes (packed here with struct), read back and audited."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from plantlink.audit.sink import MemoryAudit
from plantlink.control.service import ControlService
from plantlink.control.wiring import ControlWiring
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.conftest import _free_port
from tests.connectors.logix_server import CmServer
from tests.connectors.test_logix_connector import plant_text
from tests.waiting import wait_for

TAGS = [
    "{name: temp, source: {device: plc, tag: Temp, type: REAL}}",
    "{name: setpoint, writable: true, control: {min: 0, max: 100, verify_timeout: 5s}, "
    "source: {device: plc, tag: 'Program:Main.Setpoint', type: REAL}}",
]
OSCAR = Principal("oscar", {"s": "operator"})
SETPOINT = "s/a/l/m/setpoint"


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[CmServer, Runtime]]:
    srv = await CmServer(_free_port(), {"Temp": ("REAL", 1), "Program:Main.Setpoint": ("REAL", 1)}).start()
    srv.controller.set_raw("Program:Main.Setpoint", struct.pack("<f", 10.0))
    rt = Runtime(parse_plant(plant_text(srv.port, TAGS), "logix-plant.yaml"), tmp_path, flush_interval=0.5)
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["plc"].health.ok, 20, "the Logix controller connected")
        yield srv, rt
    finally:
        await rt.stop()
        await srv.stop()


async def test_a_governed_write_lands_in_the_controller(rig: tuple[CmServer, Runtime]) -> None:
    srv, rt = rig
    await wait_for(lambda: rt.latest.table([rt.tag_ids[SETPOINT]]).to_pylist()[0]["quality"] == 192, 20,
                   "the setpoint's first value")
    audit = MemoryAudit()
    svc = ControlService(ControlWiring.of(rt), audit)
    staged = svc.stage(OSCAR, SETPOINT, 42.5)
    assert staged.ok, staged.refusals
    assert staged.current == pytest.approx(10.0)
    out = await svc.confirm(OSCAR, staged.id, "cmd-logix-1")
    assert out.status == "applied", out
    assert srv.controller.raw("Program:Main.Setpoint") == struct.pack("<f", 42.5)
    assert out.read_back == pytest.approx(42.5)
    assert audit.kinds() == ["control.stage", "control.confirm", "control.execute", "control.result"]
    refused = svc.stage(OSCAR, SETPOINT, 500.0)
    assert not refused.ok  # above the control's max: never reaches the controller
    assert srv.controller.raw("Program:Main.Setpoint") == struct.pack("<f", 42.5)
