"""A governed write to an S7 PLC: ControlService (stage, confirm) -> Runtime -> S7 connector -> the snap7
server's DB, where the test finds the bytes (packed here with struct), read back and audited."""

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
from tests.connectors.s7_server import S7TestServer
from tests.connectors.test_s7_connector import plant_text
from tests.waiting import wait_for

TAGS = [
    "{name: temp, source: {device: plc, address: DB1.DBD2, type: REAL}}",
    "{name: setpoint, writable: true, control: {min: 0, max: 100, verify_timeout: 5s}, "
    "source: {device: plc, address: DB1.DBD44, type: REAL}}",
]
OSCAR = Principal("oscar", {"s": "operator"})
SETPOINT = "s/a/l/m/setpoint"


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[S7TestServer, Runtime]]:
    srv = await S7TestServer(_free_port()).start()
    struct.pack_into(">f", srv.dbs[1], 44, 10.0)
    rt = Runtime(parse_plant(plant_text(srv.port, TAGS), "s7-plant.yaml"), tmp_path, flush_interval=0.5)
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["plc"].health.ok, 20, "the S7 PLC connected")
        yield srv, rt
    finally:
        await rt.stop()
        await srv.stop()


async def test_a_governed_write_lands_in_the_db(rig: tuple[S7TestServer, Runtime]) -> None:
    srv, rt = rig
    await wait_for(lambda: rt.latest.table([rt.tag_ids[SETPOINT]]).to_pylist()[0]["quality"] == 192, 20,
                   "the setpoint's first value")
    audit = MemoryAudit()
    svc = ControlService(ControlWiring.of(rt), audit)
    staged = svc.stage(OSCAR, SETPOINT, 42.5)
    assert staged.ok, staged.refusals
    assert staged.current == pytest.approx(10.0)
    out = await svc.confirm(OSCAR, staged.id, "cmd-s7-1")
    assert out.status == "applied", out
    assert bytes(srv.dbs[1][44:48]) == struct.pack(">f", 42.5)
    assert out.read_back == pytest.approx(42.5)
    assert audit.kinds() == ["control.stage", "control.confirm", "control.execute", "control.result"]
    refused = svc.stage(OSCAR, SETPOINT, 500.0)
    assert not refused.ok  # above the control's max: never reaches the PLC
    assert bytes(srv.dbs[1][44:48]) == struct.pack(">f", 42.5)
