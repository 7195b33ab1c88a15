"""The S7 connector against python-snap7's server on loopback: every type read back exactly (known answers
packed here with struct), the contract suite, outage and return, a refused item, writes with read-back."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable

import pyarrow as pa
import pytest
import pytest_asyncio

from plantlink import plugins
from plantlink.connectors.base import Connector, DeviceState
from plantlink.errors import PointError
from plantlink.model import parse_plant
from plantlink.samples import Quality
from plantlink.testing.connector import ConnectorContract
from tests.conftest import _free_port
from tests.connectors.modbus_cases import Collector, points_of
from tests.connectors.outage import silent_network_recovers
from tests.connectors.s7_server import S7TestServer
from tests.waiting import wait_for

PLANT = """
enterprise: Test
devices:
  plc:
    protocol: s7
    host: 127.0.0.1
    port: {port}
    pdu_size: 240
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

TAGS = [
    "{name: speed, source: {device: plc, address: DB1.DBW0}}",
    "{name: temp, source: {device: plc, address: DB1.DBD2, type: REAL}}",
    "{name: run, type: bool, source: {device: plc, address: DB1.DBX6.3}}",
    "{name: b, source: {device: plc, address: DB1.DBB7}}",
    "{name: count, type: int, source: {device: plc, address: DB1.DBD8}}",
    "{name: word, source: {device: plc, address: DB1.DBW12, type: WORD}}",
    "{name: dword, source: {device: plc, address: DB1.DBD14, type: DWORD}}",
    "{name: big, source: {device: plc, address: DB1.DBB20, type: LREAL}}",
    "{name: recipe, type: string, source: {device: plc, address: DB1.DBB28, type: 'STRING[10]'}}",
    "{name: sint, source: {device: plc, address: DB1.DBB40, type: SINT}}",
    "{name: far, source: {device: plc, address: DB1.DBD200, type: REAL}}",
    "{name: flag, type: bool, source: {device: plc, address: M0.1}}",
    "{name: mw, source: {device: plc, address: MW20}}",
    "{name: inp, type: bool, source: {device: plc, address: I0.0}}",
    "{name: iw, source: {device: plc, address: IW2, type: UINT}}",
    "{name: out, type: bool, source: {device: plc, address: Q0.1}}",
    "{name: qw, source: {device: plc, address: QW2}}",
    "{name: setpoint, writable: true, source: {device: plc, address: DB1.DBD44, type: REAL}}",
    "{name: cmd, writable: true, type: bool, source: {device: plc, address: DB1.DBX48.5}}",
    "{name: mode, writable: true, type: int, source: {device: plc, address: MW30}}",
    "{name: label, writable: true, type: string, source: {device: plc, address: DB1.DBB50, type: 'STRING[8]'}}",
]


def plant_text(port: int, tags: list[str] = TAGS) -> str:
    return PLANT.format(port=port, tags="".join(f"                  - {t}\n" for t in tags))


def make(port: int, sink: Callable[[pa.RecordBatch], None], tags: list[str] = TAGS) -> Connector:
    plant = parse_plant(plant_text(port, tags))
    dev = plant.devices["plc"]
    plugin = plugins.load(plugins.CONNECTORS, dev.protocol)
    return plugin.connector("plc", dev.config, points_of(plant, "plc"), sink)


def fill(srv: S7TestServer) -> dict[str, object]:
    """Known values packed with struct into the server's memory; returns tag name -> expected value."""
    db = srv.dbs[1]
    struct.pack_into(">h", db, 0, -1234)
    struct.pack_into(">f", db, 2, 21.5)
    db[6] = 0b0000_1000  # bit 3
    db[7] = 200
    struct.pack_into(">i", db, 8, -70000)
    struct.pack_into(">H", db, 12, 65000)
    struct.pack_into(">I", db, 14, 4_000_000_000)
    struct.pack_into(">d", db, 20, 1.0e300)
    db[28:40] = bytes([10, 5]) + b"HELLO" + b"\0" * 5
    struct.pack_into(">b", db, 40, -5)
    struct.pack_into(">f", db, 200, -0.25)
    srv.m[0] = 0b10
    struct.pack_into(">h", srv.m, 20, 321)
    srv.i[0] = 1
    struct.pack_into(">H", srv.i, 2, 54321)
    srv.q[0] = 0b10
    struct.pack_into(">h", srv.q, 2, -2)
    return {"speed": -1234.0, "temp": 21.5, "run": 1.0, "b": 200.0, "count": -70000.0, "word": 65000.0,
            "dword": 4e9, "big": 1.0e300, "recipe": "HELLO", "sint": -5.0, "far": -0.25, "flag": 1.0,
            "mw": 321.0, "inp": 1.0, "iw": 54321.0, "out": 1.0, "qw": -2.0}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[S7TestServer]:
    srv = await S7TestServer(_free_port()).start()
    yield srv
    await srv.stop()


def by_name(conn: Connector, sink: Collector) -> dict[str, tuple[object, int]]:
    latest = sink.latest()
    return {short(p.path): latest[p.tag_id] for p in conn.points if p.tag_id in latest}


def short(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[-1]


async def test_every_type_reads_exactly(server: S7TestServer) -> None:
    want = fill(server)
    sink = Collector()
    conn = make(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: all(by_name(conn, sink).get(k) == (v, Quality.GOOD) for k, v in want.items()))
        assert conn.health.state == DeviceState.CONNECTED
        assert conn.pdu == 240  # type: ignore[attr-defined]
    finally:
        await conn.stop()


async def test_outage_marks_bad_counts_and_recovers(server: S7TestServer) -> None:
    fill(server)
    sink = Collector()
    conn = make(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: by_name(conn, sink).get("temp") == (21.5, Quality.GOOD))
        await server.stop()
        await wait_for(lambda: all(q == Quality.BAD for _, q in by_name(conn, sink).values()))
        await wait_for(lambda: conn.health.state != DeviceState.CONNECTED)
        assert conn.health.errors >= 1 and conn.health.last_error
        struct.pack_into(">f", server.dbs[1], 2, 99.5)
        await server.start()
        await wait_for(lambda: by_name(conn, sink).get("temp") == (99.5, Quality.GOOD))
        assert conn.health.state == DeviceState.CONNECTED and conn.health.reconnects >= 1
    finally:
        await conn.stop()


async def test_a_silent_network_marks_bad_and_recovers(server: S7TestServer) -> None:
    """The request unanswered within ``timeout`` is a lost connection (tests/connectors/outage.py)."""
    fill(server)

    def change() -> float:
        struct.pack_into(">f", server.dbs[1], 2, 77.5)
        return 77.5

    await silent_network_recovers(server.port, lambda port, sink: make(port, sink, TAGS[:3]), by_name, "temp",
                                  21.5, change)


async def test_an_address_outside_the_db_leaves_the_others_flowing(server: S7TestServer) -> None:
    fill(server)
    tags = [*TAGS[:2], "{name: ghost, source: {device: plc, address: DB9.DBW0}}",
            "{name: past, source: {device: plc, address: DB1.DBW1000}}"]
    sink = Collector()
    conn = make(server.port, sink, tags)
    await conn.start()
    try:
        await wait_for(lambda: by_name(conn, sink) == {
            "speed": (-1234.0, Quality.GOOD), "temp": (21.5, Quality.GOOD),
            "ghost": (None, Quality.BAD), "past": (None, Quality.BAD)})
        assert conn.health.exception_replies >= 2 and conn.health.state == DeviceState.CONNECTED
        assert "refused" in (conn.health.last_error or "")
    finally:
        await conn.stop()


async def test_a_tag_past_the_end_of_its_db_leaves_its_neighbour_flowing_and_is_named(server: S7TestServer) -> None:
    """DB1 has 256 bytes: ``past`` (bytes 256..257) is read in one range with its neighbour ``near`` (250..253);
    the CPU refuses the range, and only ``past`` stays bad, named with its address in the health."""
    struct.pack_into(">h", server.dbs[1], 0, 7)
    struct.pack_into(">f", server.dbs[1], 250, 1.5)
    tags = ["{name: first, source: {device: plc, address: DB1.DBW0}}",
            "{name: near, source: {device: plc, address: DB1.DBD250, type: REAL}}",
            "{name: past, source: {device: plc, address: DB1.DBW256}}"]
    sink = Collector()
    conn = make(server.port, sink, tags)
    assert [[(it.start, it.size) for it in req] for req in conn.pollers[0].group.requests] == [  # type: ignore[attr-defined]
        [(0, 2), (250, 8)]]
    await conn.start()
    try:
        await wait_for(lambda: by_name(conn, sink) == {
            "first": (7.0, Quality.GOOD), "near": (1.5, Quality.GOOD), "past": (None, Quality.BAD)})
        struct.pack_into(">f", server.dbs[1], 250, 2.5)
        await wait_for(lambda: by_name(conn, sink)["near"] == (2.5, Quality.GOOD))
        assert by_name(conn, sink)["past"] == (None, Quality.BAD)
        assert conn.health.state == DeviceState.CONNECTED
        error = conn.health.last_error or ""
        assert error.startswith("tag s/a/l/m/past (DB1.DBW256): ") and "refused by the CPU" in error, error
    finally:
        await conn.stop()


async def test_writes_land_in_the_plc_and_read_back(server: S7TestServer) -> None:
    fill(server)
    server.dbs[1][48] = 0b0000_0001  # bit 0 set: the write of bit 5 keeps it
    sink = Collector()
    conn = make(server.port, sink)
    pts = {short(p.path): p for p in conn.points}
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED)
        await conn.write(pts["setpoint"], 12.75)
        assert bytes(server.dbs[1][44:48]) == struct.pack(">f", 12.75)
        await conn.write(pts["cmd"], True)
        assert server.dbs[1][48] == 0b0010_0001
        await conn.write(pts["cmd"], False)
        assert server.dbs[1][48] == 0b0000_0001
        await conn.write(pts["mode"], -300)
        assert bytes(server.m[30:32]) == struct.pack(">h", -300)
        await conn.write(pts["label"], "AB")
        assert bytes(server.dbs[1][50:54]) == bytes([8, 2]) + b"AB"
        await wait_for(lambda: by_name(conn, sink).get("setpoint") == (12.75, Quality.GOOD))
        with pytest.raises(PointError, match="not writable"):
            await conn.write(pts["temp"], 1.0)
        with pytest.raises(PointError, match="out of range"):
            await conn.write(pts["mode"], 70000)
        with pytest.raises(PointError, match="do not fit"):
            await conn.write(pts["label"], "TOO LONG!")
    finally:
        await conn.stop()


def test_a_type_that_cannot_feed_the_tag_is_a_located_error() -> None:
    from plantlink.errors import ConfigError
    bad = ["{name: t, source: {device: plc, address: DB1.DBD2, type: INT}}",
           "{name: u, type: string, source: {device: plc, address: DB1.DBW0}}"]
    with pytest.raises(ConfigError) as err:
        parse_plant(plant_text(102, bad))
    text = str(err.value)
    assert "addresses 4 byte(s) but INT has 2" in text and "string tag needs S7 type STRING" in text


class TestS7Connector(ConnectorContract):
    @pytest_asyncio.fixture
    async def server(self) -> AsyncIterator[S7TestServer]:
        srv = await S7TestServer(_free_port()).start()
        yield srv
        await srv.stop()

    def make_connector(self, server: S7TestServer, sink: Callable[[pa.RecordBatch], None]) -> Connector:
        return make(server.port, sink, TAGS[:3] + TAGS[8:9] + TAGS[11:13])

    async def set_value(self, server: S7TestServer, value: int) -> None:
        struct.pack_into(">h", server.dbs[1], 0, value)  # the first tag, speed: DB1.DBW0 INT


async def test_odd_sized_items_in_one_request_read_exactly(server: S7TestServer) -> None:
    """Items of 1 and 3 bytes in one multi-item reply (each followed by a fill byte) decode exactly."""
    db = server.dbs[1]
    db[101] = 0x7F
    struct.pack_into(">h", db, 150, -2)
    db[152] = 0x81
    db[201] = 0b1000_0000
    tags = ["{name: a, source: {device: plc, address: DB1.DBB101}}",
            "{name: b, source: {device: plc, address: DB1.DBW150}}",
            "{name: c, source: {device: plc, address: DB1.DBB152, type: SINT}}",
            "{name: d, type: bool, source: {device: plc, address: DB1.DBX201.7}}"]
    sink = Collector()
    conn = make(server.port, sink, tags)
    assert [[(it.start, it.size) for it in req] for req in conn.pollers[0].group.requests] == [  # type: ignore[attr-defined]
        [(101, 1), (150, 3), (201, 1)]]
    await conn.start()
    try:
        await wait_for(lambda: by_name(conn, sink) == {"a": (127.0, Quality.GOOD), "b": (-2.0, Quality.GOOD),
                                                       "c": (-127.0, Quality.GOOD), "d": (1.0, Quality.GOOD)})
    finally:
        await conn.stop()
