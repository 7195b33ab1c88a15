"""The Logix connector against a second server nobody on the project wrote: cpppo's EtherNet/IP Logix
simulator (a subprocess). Its memory is set and read back with cpppo's own client, never with pylogix.
cpppo's STRING is a CIP STRING (type 0xD0), not the Logix STRING structure: the connector names the mismatch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from plantlink.connectors.base import DeviceState
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.logix_server import CpppoServer
from tests.connectors.modbus_cases import Collector
from tests.connectors.test_logix_connector import by_name, make
from tests.waiting import wait_for

SERVED = ["Run=BOOL", "Small=SINT", "Speed=INT", "Count=DINT", "Big=LINT", "Temp=REAL", "Energy=LREAL",
          "Counts=DINT[10]", "Recipe=STRING", "Setpoint=REAL"]
TAGS = [
    "{name: run, type: bool, source: {device: plc, tag: Run, type: BOOL}}",
    "{name: small, source: {device: plc, tag: Small, type: SINT}}",
    "{name: speed, source: {device: plc, tag: Speed, type: INT}}",
    "{name: count, type: int, source: {device: plc, tag: Count, type: DINT}}",
    "{name: big, source: {device: plc, tag: Big, type: LINT}}",
    "{name: temp, source: {device: plc, tag: Temp, type: REAL}}",
    "{name: energy, source: {device: plc, tag: Energy, type: LREAL}}",
    "{name: third, source: {device: plc, tag: 'Counts[3]', type: DINT}}",
    "{name: recipe, type: string, source: {device: plc, tag: Recipe, type: STRING}}",
    "{name: ghost, source: {device: plc, tag: NoSuchTag}}",
    "{name: setpoint, writable: true, source: {device: plc, tag: Setpoint, type: REAL}}",
]
WRITES = [("Run", 1, "BOOL"), ("Small", -100, "SINT"), ("Speed", -1234, "INT"), ("Count", -70000, "DINT"),
          ("Big", 2**40 + 3, "LINT"), ("Temp", 21.5, "REAL"), ("Energy", 1e300, "LREAL"), ("Counts[3]", 333, "DINT")]
WANT = {"run": 1.0, "small": -100.0, "speed": -1234.0, "count": -70000.0, "big": float(2**40 + 3), "temp": 21.5,
        "energy": 1e300, "third": 333.0}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[CpppoServer]:
    srv = await CpppoServer(_free_port(), SERVED).start()
    yield srv
    await srv.stop()


async def test_cpppo_every_type_reads_exactly_and_errors_stay_per_tag(server: CpppoServer) -> None:
    await server.write(WRITES)
    sink = Collector()
    conn = make(server.port, sink, TAGS)
    await conn.start()
    try:
        await wait_for(lambda: all(by_name(conn, sink).get(k) == (v, Quality.GOOD) for k, v in WANT.items()),
                       timeout=60)
        got = by_name(conn, sink)
        assert got["ghost"][1] == Quality.BAD and got["recipe"][1] == Quality.BAD
        assert conn.health.state == DeviceState.CONNECTED
        setpoint = next(p for p in conn.points if p.path.endswith("setpoint"))
        await conn.write(setpoint, 42.5)
        assert await server.read(["Setpoint"]) == [[42.5]]  # read with cpppo's client
    finally:
        await conn.stop()


async def test_cpppo_reconnects_after_the_server_restarts(server: CpppoServer) -> None:
    await server.write(WRITES)
    sink = Collector()
    conn = make(server.port, sink, TAGS[:8])
    await conn.start()
    try:
        await wait_for(lambda: by_name(conn, sink).get("temp") == (21.5, Quality.GOOD), timeout=60)
        await server.stop()
        await wait_for(lambda: by_name(conn, sink)["temp"][1] == Quality.BAD, timeout=60)
        await server.start()  # a new process: its memory starts at zero
        await server.write([("Temp", 23.5, "REAL")])
        await wait_for(lambda: by_name(conn, sink)["temp"] == (23.5, Quality.GOOD), timeout=60)
        assert conn.health.reconnects >= 1
    finally:
        await conn.stop()
