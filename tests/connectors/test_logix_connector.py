"""The Logix connector against cm-ethernetip's Logix server on loopback: every type and addressing form read
back exactly (known answers packed here with struct into the server's memory), a missing tag and a wrong type
leaving the others flowing, outage and return, writes with read-back, the contract suite."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pyarrow as pa
import pytest
import pytest_asyncio

from plantlink import plugins
from plantlink.connectors.base import Connector, DeviceState
from plantlink.errors import ConfigError, PointError
from plantlink.model import parse_plant
from plantlink.samples import Quality
from plantlink.testing.connector import ConnectorContract
from tests.conftest import _free_port
from tests.connectors.logix_server import CmServer
from tests.connectors.modbus_cases import Collector, points_of
from tests.connectors.outage import silent_network_recovers
from tests.waiting import wait_for

PLANT = """
enterprise: Test
devices:
  plc:
    protocol: logix
    host: 127.0.0.1
    port: {port}
    poll: 50ms
    timeout: 500ms
    reconnect_min: 50ms
    reconnect_max: 200ms
sites:
  - name: s
    timezone: UTC
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: m
                tags:
{tags}
"""

SERVED = {"Run": ("BOOL", 1), "Small": ("SINT", 1), "Speed": ("INT", 1), "Count": ("DINT", 1),
          "Big": ("LINT", 1), "Temp": ("REAL", 1), "Energy": ("LREAL", 1), "Recipe": ("STRING", 1),
          "Counts": ("DINT", 10), "Program:Main.Rate": ("REAL", 1), "Motor.Status.Amps": ("REAL", 1),
          "Setpoint": ("REAL", 1), "Label": ("STRING", 1), "Mode": ("DINT", 1)}

TAGS = [
    "{name: run, type: bool, source: {device: plc, tag: Run, type: BOOL}}",
    "{name: small, source: {device: plc, tag: Small, type: SINT}}",
    "{name: speed, source: {device: plc, tag: Speed, type: INT}}",
    "{name: count, type: int, source: {device: plc, tag: Count, type: DINT}}",
    "{name: big, source: {device: plc, tag: Big, type: LINT}}",
    "{name: temp, source: {device: plc, tag: Temp, type: REAL}}",
    "{name: energy, source: {device: plc, tag: Energy, type: LREAL}}",
    "{name: recipe, type: string, source: {device: plc, tag: Recipe, type: STRING}}",
    "{name: third, source: {device: plc, tag: 'Counts[3]', type: DINT}}",
    "{name: ninth, source: {device: plc, tag: 'Counts[9]'}}",
    "{name: rate, source: {device: plc, tag: 'Program:Main.Rate', type: REAL, poll: 100ms}}",
    "{name: amps, source: {device: plc, tag: Motor.Status.Amps, type: REAL}}",
    "{name: setpoint, writable: true, source: {device: plc, tag: Setpoint, type: REAL}}",
    "{name: label, writable: true, type: string, source: {device: plc, tag: Label, type: STRING}}",
    "{name: mode, writable: true, type: int, source: {device: plc, tag: Mode}}",
]


def plant_text(port: int, tags: list[str] = TAGS) -> str:
    return PLANT.format(port=port, tags="".join(f"                  - {t}\n" for t in tags))


def make(port: int, sink: Callable[[pa.RecordBatch], None], tags: list[str] = TAGS) -> Connector:
    plant = parse_plant(plant_text(port, tags))
    dev = plant.devices["plc"]
    plugin = plugins.load(plugins.CONNECTORS, dev.protocol)
    return plugin.connector("plc", dev.config, points_of(plant, "plc"), sink)


def fill(srv: CmServer) -> dict[str, object]:
    """Known values packed with struct into the server's tags; returns tag name -> expected value."""
    c = srv.controller
    c.set_raw("Run", b"\x01")
    c.set_raw("Small", struct.pack("<b", -100))
    c.set_raw("Speed", struct.pack("<h", -1234))
    c.set_raw("Count", struct.pack("<i", -70000))
    c.set_raw("Big", struct.pack("<q", 2**40 + 3))
    c.set_raw("Temp", struct.pack("<f", 21.5))
    c.set_raw("Energy", struct.pack("<d", 1.0e300))
    c.set_raw("Recipe", struct.pack("<i", 5) + b"HELLO")
    c.set_raw("Counts[3]", struct.pack("<i", 333))
    c.set_raw("Counts[9]", struct.pack("<i", -9))
    c.set_raw("Program:Main.Rate", struct.pack("<f", 0.25))
    c.set_raw("Motor.Status.Amps", struct.pack("<f", 12.75))
    return {"run": 1.0, "small": -100.0, "speed": -1234.0, "count": -70000.0, "big": float(2**40 + 3),
            "temp": 21.5, "energy": 1.0e300, "recipe": "HELLO", "third": 333.0, "ninth": -9.0, "rate": 0.25,
            "amps": 12.75}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[CmServer]:
    srv = await CmServer(_free_port(), SERVED).start()
    yield srv
    await srv.stop()


def by_name(conn: Connector, sink: Collector) -> dict[str, tuple[object, int]]:
    latest = sink.latest()
    return {p.path.rsplit("/", 1)[-1]: latest[p.tag_id] for p in conn.points if p.tag_id in latest}


async def test_every_type_and_address_form_reads_exactly(server: CmServer) -> None:
    want = fill(server)
    sink = Collector()
    conn = make(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: all(by_name(conn, sink).get(k) == (v, Quality.GOOD) for k, v in want.items()))
        assert conn.health.state == DeviceState.CONNECTED
        assert conn.health.exception_replies == 0
        server.controller.set_raw("Counts[3]", struct.pack("<i", 334))  # a change is seen: not a stale value
        await wait_for(lambda: by_name(conn, sink)["third"] == (334.0, Quality.GOOD))
    finally:
        await conn.stop()


async def test_a_missing_tag_and_a_wrong_type_leave_the_others_flowing(server: CmServer) -> None:
    fill(server)
    tags = [*TAGS[:8], "{name: ghost, source: {device: plc, tag: NoSuchTag, type: REAL}}",
            "{name: wrong, source: {device: plc, tag: Mode, type: REAL}}"]
    sink = Collector()
    conn = make(server.port, sink, tags)
    await conn.start()
    try:
        await wait_for(lambda: len(by_name(conn, sink)) == len(tags) and conn.health.exception_replies >= 4)
        got = by_name(conn, sink)
        assert got["ghost"][1] == Quality.BAD and got["wrong"][1] == Quality.BAD
        assert got["count"] == (-70000.0, Quality.GOOD) and got["temp"] == (21.5, Quality.GOOD)
        assert conn.health.state == DeviceState.CONNECTED
        server.controller.set_raw("Temp", struct.pack("<f", 22.5))
        await wait_for(lambda: by_name(conn, sink)["temp"] == (22.5, Quality.GOOD))
        errors = conn.health.last_error or ""
        assert "NoSuchTag" in errors or "Mode" in errors
    finally:
        await conn.stop()
    messages = {m for m in (conn.health.last_error,) if m}
    assert messages


async def test_the_health_names_the_missing_tag(server: CmServer) -> None:
    fill(server)
    sink = Collector()
    conn = make(server.port, sink, ["{name: ghost, source: {device: plc, tag: NoSuchTag, type: REAL}}"])
    await conn.start()
    try:
        await wait_for(lambda: conn.health.last_error is not None)
        assert "tag NoSuchTag" in (conn.health.last_error or "")
    finally:
        await conn.stop()


async def test_a_type_mismatch_is_named_in_the_health(server: CmServer) -> None:
    fill(server)
    sink = Collector()
    conn = make(server.port, sink, ["{name: wrong, source: {device: plc, tag: Count, type: REAL}}"])
    await conn.start()
    try:
        await wait_for(lambda: conn.health.last_error is not None)
        assert conn.health.last_error == "tag Count is DINT in the controller, not REAL as configured"
    finally:
        await conn.stop()


async def test_outage_marks_bad_and_recovers_after_the_server_restarts(server: CmServer) -> None:
    want = fill(server)
    sink = Collector()
    conn = make(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: by_name(conn, sink).get("temp") == (21.5, Quality.GOOD))
        await server.stop()
        await wait_for(lambda: conn.health.state in (DeviceState.RECONNECTING, DeviceState.DOWN))
        await wait_for(lambda: by_name(conn, sink)["temp"][1] == Quality.BAD)
        server.controller.set_raw("Temp", struct.pack("<f", 23.5))
        await server.start()
        await wait_for(lambda: by_name(conn, sink)["temp"] == (23.5, Quality.GOOD))
        assert conn.health.state == DeviceState.CONNECTED and conn.health.reconnects >= 1
        assert by_name(conn, sink)["count"] == (want["count"], Quality.GOOD)
    finally:
        await conn.stop()


async def test_a_silent_network_marks_bad_and_recovers(server: CmServer) -> None:
    """The request unanswered within ``timeout`` is a lost connection (tests/connectors/outage.py)."""
    fill(server)

    def change() -> float:
        server.controller.set_raw("Temp", struct.pack("<f", 77.5))
        return 77.5

    await silent_network_recovers(server.port, lambda port, sink: make(port, sink, TAGS[:6]), by_name, "temp",
                                  21.5, change)


async def test_writes_land_in_the_plc_and_read_back(server: CmServer) -> None:
    fill(server)
    sink = Collector()
    conn = make(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED)
        points = {p.path.rsplit("/", 1)[-1]: p for p in conn.points}
        await conn.write(points["setpoint"], 42.5)
        assert struct.unpack("<f", server.controller.raw("Setpoint"))[0] == 42.5
        await conn.write(points["label"], "ABC")
        assert server.controller.raw("Label")[:7] == struct.pack("<i", 3) + b"ABC"
        await wait_for(lambda: by_name(conn, sink).get("mode") is not None)  # its type is learnt from a read
        await conn.write(points["mode"], 7)
        assert struct.unpack("<i", server.controller.raw("Mode"))[0] == 7
        with pytest.raises(PointError, match="not writable"):
            await conn.write(points["temp"], 1.0)
        with pytest.raises(PointError, match="not a whole number"):
            await conn.write(points["mode"], 1.5)
    finally:
        await conn.stop()


def test_a_type_that_cannot_feed_the_tag_is_a_located_error() -> None:
    with pytest.raises(ConfigError, match="needs Logix type STRING"):
        parse_plant(plant_text(1, ["{name: s, type: string, source: {device: plc, tag: T, type: DINT}}"]))
    with pytest.raises(ConfigError, match="not a tag or member name"):
        parse_plant(plant_text(1, ["{name: s, source: {device: plc, tag: 'Bad Name'}}"]))
    with pytest.raises(ConfigError, match="unknown Logix type"):
        parse_plant(plant_text(1, ["{name: s, source: {device: plc, tag: T, type: FLOAT}}"]))


class TestLogixConnector(ConnectorContract):
    @pytest_asyncio.fixture
    async def server(self) -> AsyncIterator[CmServer]:
        srv = await CmServer(_free_port(), {"Value": ("DINT", 1)}).start()
        yield srv
        await srv.stop()

    def make_connector(self, server: CmServer, sink: Callable[[pa.RecordBatch], None]) -> Connector:
        return make(server.port, sink, ["{name: v, source: {device: plc, tag: Value, type: DINT}}"])

    async def set_value(self, server: CmServer, value: int) -> None:
        server.controller.set_raw("Value", struct.pack("<i", value))


class Requests:
    """What the server was asked, seen at its dispatcher: each Multiple Service Packet (its data length and
    its number of services) and how often each tag was read (Read Tag 0x4C, alone or inside a packet)."""

    def __init__(self, srv: CmServer):
        self.packets: list[tuple[int, int]] = []
        self.reads: dict[str, int] = {}
        dispatcher = srv.controller.dispatcher
        inner = dispatcher.dispatch

        def dispatch(service_code: int, path: Any, data: bytes) -> Any:
            if service_code == 0x0A:
                self.packets.append((len(data), struct.unpack_from("<H", data)[0]))
            elif service_code == 0x4C and path.symbolic_name is not None:
                self.reads[path.symbolic_name] = self.reads.get(path.symbolic_name, 0) + 1
            return inner(service_code, path, data)

        dispatcher.dispatch = dispatch

    def clear(self) -> None:
        self.packets.clear()
        self.reads.clear()


MANY = 150


@pytest.mark.parametrize("size", [504, 4002])
async def test_many_tags_go_in_multi_service_packets_sized_to_the_connection(size: int) -> None:
    """150 DINTs of one poll period: in one packet with a 4002-byte connection, in several of at most 504 bytes
    (each with many services) with a 504-byte connection; every value read exactly."""
    srv = await CmServer(_free_port(), {f"T{i:03d}": ("DINT", 1) for i in range(MANY)}).start()
    for i in range(MANY):
        srv.controller.set_raw(f"T{i:03d}", struct.pack("<i", 1000 + i))
    seen = Requests(srv)
    tags = [f"{{name: t{i:03d}, source: {{device: plc, tag: T{i:03d}, type: DINT}}}}" for i in range(MANY)]
    sink = Collector()
    text = plant_text(srv.port, tags).replace("timeout: 500ms", f"timeout: 2s\n    connection_size: {size}")
    plant = parse_plant(text)
    conn = plugins.load(plugins.CONNECTORS, "logix").connector(
        "plc", plant.devices["plc"].config, points_of(plant, "plc"), sink)
    await conn.start()
    try:
        want = {f"t{i:03d}": (float(1000 + i), Quality.GOOD) for i in range(MANY)}
        await wait_for(lambda: by_name(conn, sink) == want, what="every tag read")
        seen.clear()  # the types are learnt: from here on, polling only
        await wait_for(lambda: sum(n for _, n in seen.packets) >= 5 * MANY, what="five cycles of packets")
        packets = list(seen.packets)
        assert all(length <= size for length, _ in packets), packets
        assert not seen.reads.keys() - {f"T{i:03d}" for i in range(MANY)}
        if size == 4002:
            assert {n for _, n in packets} == {MANY}, packets  # the whole group in one packet
        else:
            assert max(n for _, n in packets) < MANY and min(n for _, n in packets[:-1]) >= 10, packets
            assert max(length for length, _ in packets) > size // 2  # filled, not one tag a packet
    finally:
        await conn.stop()
        await srv.stop()


async def test_each_tag_is_read_at_its_own_rate(server: CmServer) -> None:
    """The device polls every 50 ms; a tag whose source says poll: 1s is read about twenty times less often."""
    fill(server)
    seen = Requests(server)
    tags = ["{name: temp, source: {device: plc, tag: Temp, type: REAL}}",
            "{name: count, type: int, source: {device: plc, tag: Count, type: DINT}}",
            "{name: slow, source: {device: plc, tag: Speed, type: INT, poll: 1s}}"]
    sink = Collector()
    conn = make(server.port, sink, tags)
    assert [(p.period, len(p.names)) for p in conn.pollers] == [(0.05, 2), (1.0, 1)]  # type: ignore[attr-defined]
    await conn.start()
    try:
        await wait_for(lambda: len(by_name(conn, sink)) == 3, what="every tag read")
        seen.clear()
        await wait_for(lambda: seen.reads.get("Speed", 0) >= 3, timeout=30, what="three reads of the slow tag")
        fast, slow = seen.reads.get("Temp", 0), seen.reads["Speed"]
        assert fast == seen.reads.get("Count") or abs(fast - seen.reads.get("Count", 0)) <= 1
        assert fast >= 5 * slow, seen.reads
    finally:
        await conn.stop()
