"""The Modbus connector against real pymodbus servers: outages, reconnects, dead devices, writes."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from plantlink.connectors.base import DeviceState, Point
from plantlink.connectors.modbus import ModbusConnector
from plantlink.errors import ConfigError, DeviceUnavailable, PointError
from plantlink.model import parse_plant
from plantlink.samples import Quality
from tests.connectors.modbus_cases import Collector, SimServer, pack, pack_string, points_of
from tests.waiting import wait_for

PLANT = """
enterprise: Test
devices:
  plc:
    protocol: modbus
    host: {host}
    port: {port}
    poll: {poll}
    timeout: 200ms
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
#EXTRA
                  - {{name: speed, source: {{device: plc, address: 0}}}}
                  - {{name: temp, source: {{device: plc, address: 1, type: float32}}}}
                  - {{name: run, type: bool, source: {{device: plc, table: coil, address: 0}}}}
"""

UNITS = {1: {"holding": [{"address": 0, "words": [7]}, {"address": 1, "type": "float32", "value": 21.5}],
             "coil": [{"address": 0, "bits": [True]}]}}


def connector(port: int, sink: Collector, poll: str = "50ms", host: str = "127.0.0.1",
              extra: list[str] | tuple[str, ...] = ()) -> tuple[ModbusConnector, list[Point]]:
    """A connector for PLANT, with ``extra`` tag lines (YAML flow mappings) before its own tags."""
    text = PLANT.format(host=host, port=port, poll=poll)
    text = text.replace("#EXTRA\n", "".join(f"                  - {t}\n" for t in extra))
    plant = parse_plant(text)
    pts = points_of(plant, "plc")
    return ModbusConnector("plc", plant.devices["plc"].config, pts, sink), pts


@pytest.fixture
async def server(free_port: Callable[[], int]) -> AsyncIterator[SimServer]:
    srv = await SimServer(free_port(), UNITS).start()
    yield srv
    await srv.stop()


async def test_values_flow_one_batch_per_cycle(server: SimServer) -> None:
    sink = Collector()
    conn, pts = connector(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: len(sink.batches) >= 5)
        assert conn.health.state == DeviceState.CONNECTED
        server.set("holding", 0, [1234])
        await wait_for(lambda: sink.latest().get(pts[0].tag_id, (None,))[0] == 1234.0)
    finally:
        await conn.stop()
    assert conn.health.state == DeviceState.STOPPED
    latest = sink.latest()
    assert latest[pts[1].tag_id] == (21.5, Quality.GOOD)
    assert latest[pts[2].tag_id] == (1.0, Quality.GOOD)
    assert all(b.num_rows == 3 for b in sink.batches)  # holding and coil blocks of one cycle: one batch
    assert conn.health.samples == sum(b.num_rows for b in sink.batches)


async def test_outage_goes_bad_then_down_and_recovers_on_restart(server: SimServer) -> None:
    sink = Collector()
    conn, pts = connector(server.port, sink)
    await conn.start()
    try:
        await wait_for(lambda: len(sink.batches) >= 3)
        await server.stop()
        await wait_for(lambda: conn.health.state == DeviceState.RECONNECTING, timeout=2)
        n_bad_start = len(sink.batches)
        await wait_for(lambda: conn.health.state == DeviceState.DOWN, timeout=3)
        assert conn.health.last_error and "cannot connect" in conn.health.last_error
        bad = [r for r in sink.rows() if r[3] == Quality.BAD]
        assert sorted(r[0] for r in bad) == sorted(p.tag_id for p in pts)  # each point BAD exactly once
        assert len(sink.batches) == n_bad_start  # nothing more while down
        await server.start()  # same port, fresh server
        server.set("holding", 0, [99])
        await wait_for(lambda: sink.latest()[pts[0].tag_id] == (99.0, Quality.GOOD), timeout=3)
        assert conn.health.state == DeviceState.CONNECTED
        assert conn.health.reconnects == 1
        assert sink.latest()[pts[1].tag_id] == (21.5, Quality.GOOD)
    finally:
        await conn.stop()


async def test_start_returns_at_once_when_device_is_down(free_port: Callable[[], int]) -> None:
    sink = Collector()
    conn, pts = connector(free_port(), sink)  # nothing listens there
    t0 = time.monotonic()
    await conn.start()
    assert time.monotonic() - t0 < 0.1
    try:
        await wait_for(lambda: conn.health.state == DeviceState.DOWN, timeout=3)
        assert {tid: q for tid, (_, q) in sink.latest().items()} == {p.tag_id: Quality.BAD for p in pts}
        assert len(sink.batches) == 1  # one batch on the first failure, none on the retries
        assert conn.health.last_error and f"cannot connect to 127.0.0.1:{conn.device.port}" in conn.health.last_error
    finally:
        await conn.stop()


class SilentServer:
    """Accepts TCP connections and never answers: requests time out."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.accepted = 0

    async def start(self, port: int) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            await reader.read()  # swallow requests until the client gives up

        self.server = await asyncio.start_server(handle, "127.0.0.1", port)

    async def stop(self) -> None:
        if self.server:
            self.server.close()


async def test_timeouts_reconnect_and_do_not_slow_a_live_device(
        server: SimServer, free_port: Callable[[], int]) -> None:
    silent = SilentServer()
    silent_port = free_port()
    await silent.start(silent_port)
    live_sink, silent_sink, refused_sink = Collector(), Collector(), Collector()
    live, live_pts = connector(server.port, live_sink, poll="20ms")
    mute, _ = connector(silent_port, silent_sink, poll="20ms")
    dead, _ = connector(free_port(), refused_sink, poll="20ms")
    for c in (mute, dead, live):
        await c.start()
    try:
        await wait_for(lambda: mute.health.last_error and dead.health.last_error, what="the dead ones fail")
        before = live_sink.counts().get(live_pts[0].tag_id, 0)
        # 35 polls at 20 ms take 0.7 s; a live device held up by the dead ones' timeouts would take far longer
        await wait_for(lambda: live_sink.counts().get(live_pts[0].tag_id, 0) - before >= 35, 2.0,
                       "the live device keeps being read every 20 ms beside two dead ones")
        assert mute.health.state in (DeviceState.RECONNECTING, DeviceState.DOWN)
        assert mute.health.last_error and "failed" in mute.health.last_error
        # it timed out, dropped the connection and reconnected
        await wait_for(lambda: silent.accepted >= 2, what="the silent device reconnected to")
        await wait_for(lambda: dead.health.state == DeviceState.DOWN, what="the refusing device down")
        assert live.health.state == DeviceState.CONNECTED
        assert {q for _, q in silent_sink.latest().values()} == {Quality.BAD}
    finally:
        for c in (mute, dead, live):
            await c.stop()
        await silent.stop()


# ------------------------------------------------------------------------------------------- writes

WRITE_TAGS = (
    "{name: flow, writable: true, scaling: {raw_low: 0, raw_high: 1000, eng_low: 0, eng_high: 100},"
    " source: {device: plc, address: 10, type: float32, word_order: little}}",
    "{name: level, writable: true, source: {device: plc, address: 12, type: int16, scale: 0.1}}",
    "{name: flag, type: bool, writable: true,"
    " source: {device: plc, address: 13, type: bool, bit: 3, byte_order: little}}",
    "{name: pump, type: bool, writable: true, source: {device: plc, table: coil, address: 1}}",
    "{name: recipe, type: string, writable: true, source: {device: plc, address: 14, type: string, length: 3}}",
    "{name: count, type: int, writable: true, source: {device: plc, address: 17, type: uint32}}",
)

WRITE_UNITS: dict[int, Any] = {1: {
    "holding": [{"address": 0, "words": [7]}, {"address": 1, "type": "float32", "value": 21.5},
                {"address": 3, "words": [0] * 16}],  # 3..18: the block 0..18 is served whole
    "coil": [{"address": 0, "bits": [True, False]}]}}


async def test_writes_encode_and_land_in_the_device(free_port: Callable[[], int]) -> None:
    srv = await SimServer(free_port(), WRITE_UNITS).start()
    sink = Collector()
    conn, pts = connector(srv.port, sink, extra=WRITE_TAGS)
    by = {p.path.rsplit("/", 1)[1]: p for p in pts}
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED)
        await conn.write(by["flow"], 42.0)  # eng 42 -> raw 420 (tag scaling), float32 word-swapped
        assert srv.get("holding", 10, 2) == pack("float32", 420.0, "little", "big")
        await conn.write(by["level"], -12.3)  # raw -123 (scale 0.1)
        assert srv.get("holding", 12) == pack("int16", -123)
        srv.set("holding", 13, [0x0001])  # another bit already set: read-modify-write keeps it
        await conn.write(by["flag"], True)  # bit 3 after byte swap: 0x0008 -> register 0x0800
        assert srv.get("holding", 13) == [0x0801]
        await conn.write(by["flag"], False)
        assert srv.get("holding", 13) == [0x0001]
        await conn.write(by["pump"], True)
        assert srv.get("coil", 1) == [1]
        await conn.write(by["recipe"], "AB1")
        assert srv.get("holding", 14, 3) == pack_string("AB1", 3)
        await conn.write(by["count"], 4_000_000_000)
        assert srv.get("holding", 17, 2) == list(struct.unpack(">HH", struct.pack(">I", 4_000_000_000)))
        with pytest.raises(PointError, match=r"s/a/l/m/count.*out of range for uint32"):
            await conn.write(by["count"], -1)
        with pytest.raises(PointError, match=r"s/a/l/m/level.*out of range for int16"):
            await conn.write(by["level"], 5000.0)  # raw 50000 > 32767
        with pytest.raises(PointError, match="not writable"):
            await conn.write(by["speed"], 1)
        # the values written are read back by the poll loop
        await wait_for(lambda: sink.latest().get(by["flow"].tag_id, (None,))[0] == pytest.approx(42.0))
        await srv.stop()
        await wait_for(lambda: conn.health.state != DeviceState.CONNECTED)
        with pytest.raises(DeviceUnavailable):
            await conn.write(by["level"], 1.0)
    finally:
        await conn.stop()
        await srv.stop()


async def test_write_refused_by_device_names_the_exception(free_port: Callable[[], int]) -> None:
    units = {1: {"holding": [{"address": 0, "words": [7]}, {"address": 1, "type": "float32", "value": 1.0}],
                 "coil": [{"address": 0, "bits": [True]}]}}
    srv = await SimServer(free_port(), units).start()
    far = "{name: far, writable: true, source: {device: plc, address: 900, poll: 10s}}"
    conn, pts = connector(srv.port, Collector(), extra=[far])
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED)
        with pytest.raises(PointError, match=r"s/a/l/m/far: write refused: .*exception 2 \(ILLEGAL_ADDRESS\)"):
            await conn.write(pts[0], 5)
    finally:
        await conn.stop()
        await srv.stop()


def test_constructor_rejects_points_that_fail_the_checks() -> None:
    plant = parse_plant(PLANT.format(host="127.0.0.1", port=1502, poll="1s"))
    pts = points_of(plant, "plc")
    clash = Point(99, "s/a/l/m/clash", pts[0].tag, pts[1].source.model_copy(update={"address": 2}))
    with pytest.raises(ConfigError, match=r"s/a/l/m/clash address.*overlaps tag 'temp'"):
        ModbusConnector("plc", plant.devices["plc"].config, [*pts, clash], Collector())
