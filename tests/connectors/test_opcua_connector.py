"""OPC UA connector against a real asyncua server on loopback (one server per module, one per restart test)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
import pytest_asyncio
from asyncua import Node, Server, ua

from plantlink.connectors.base import DeviceState
from plantlink.connectors.opcua import OpcUaConnector
from plantlink.errors import DeviceUnavailable, PointError
from plantlink.samples import Quality
from tests.conftest import _free_port
from tests.connectors.test_opcua_support import Collector, make_server, plant_text, points_of
from tests.waiting import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAGS = """
- {name: temp, source: {device: ua, node: "ns=2;s=Plant.Oven.Temp"}}
- {name: count, type: int, source: {device: ua, node: "ns=2;s=Plant.Oven.Count"}}
- {name: running, type: bool, source: {device: ua, node: "ns=2;s=Plant.Oven.Running"}}
- {name: recipe, type: string, source: {device: ua, node: "ns=2;s=Plant.Oven.Recipe"}}
- name: pressure
  scaling: {raw_low: 0, raw_high: 1000, eng_low: 0, eng_high: 10}
  source: {device: ua, node: "ns=2;s=Plant.Oven.Pressure", sampling_interval: 20ms}
- {name: level, deadband: 0.5, source: {device: ua, node: "ns=2;s=Plant.Oven.Level"}}
- {name: ghost, source: {device: ua, node: "ns=2;s=Plant.Oven.DoesNotExist"}}
"""
TEMP, COUNT, RUNNING, RECIPE, PRESSURE, LEVEL, GHOST = range(7)

WRITE_TAGS = """
- {name: setpoint, writable: true, source: {device: ua, node: "ns=2;s=Plant.Oven.Setpoint"}}
- {name: speed, type: int, writable: true, source: {device: ua, node: "ns=2;s=Plant.Oven.Speed"}}
- {name: mode, type: string, writable: true, source: {device: ua, node: "ns=2;s=Plant.Oven.Mode"}}
- name: setpoint_pct
  writable: true
  scaling: {raw_low: 0, raw_high: 1000, eng_low: 0, eng_high: 100}
  source: {device: ua, node: "ns=2;s=Plant.Oven.Setpoint"}
- {name: temp_ro, source: {device: ua, node: "ns=2;s=Plant.Oven.Temp"}}
- {name: temp_forced, writable: true, source: {device: ua, node: "ns=2;s=Plant.Oven.Temp"}}
"""


def us(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[tuple[int, Server, dict[str, Node]]]:
    port = _free_port()
    srv, nodes = await make_server(port)
    yield port, srv, nodes
    await srv.stop()


async def started(text: str) -> tuple[OpcUaConnector, Collector]:
    config, points = points_of(text)
    sink = Collector()
    conn = OpcUaConnector("ua", config, points, sink)
    await conn.start()
    await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, what="connected")
    return conn, sink


async def test_values_types_quality_scaling_and_timestamps(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    port, _, nodes = server
    await nodes["Pressure"].write_value(250.0)
    caplog.set_level(logging.WARNING, logger="plantlink.connectors.opcua")
    conn, sink = await started(plant_text(port, TAGS))
    try:
        await wait_for(lambda: all(sink.rows(i) for i in range(7)), what="initial values")
        # The initial values of all subscribed numeric points come in one batch (one publish response).
        first = next(b for b in sink.batches if Quality.GOOD in b.column("quality").to_pylist())
        assert sorted(first.column("tag_id").to_pylist()) == sorted([TEMP, COUNT, RUNNING, PRESSURE, LEVEL, RECIPE])
        assert sink.last(TEMP)[1:] == (20.0, Quality.GOOD)
        assert sink.last(COUNT)[1:] == (7.0, Quality.GOOD)
        assert sink.last(RUNNING)[1:] == (1.0, Quality.GOOD)
        assert sink.last(PRESSURE)[1:] == (250 * 10 / 1000, Quality.GOOD)
        text = first.filter(pc.is_valid(first.column("text")))  # text and numbers in one batch
        assert text.column("text").to_pylist() == ["A"] and text.column("value").null_count == 1
        assert text.column("tag_id").to_pylist() == [RECIPE]

        # The nonexistent node: BAD, logged with tag path and node id; the others are good.
        _, value, q = sink.last(GHOST)
        assert q == Quality.BAD and value is None  # a bad sample has no value
        assert conn.unsubscribed == [GHOST]
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "s/a/l/oven/ghost" in logged and "ns=2;s=Plant.Oven.DoesNotExist" in logged
        assert "BadNodeIdUnknown" in logged
        assert conn.health.state == DeviceState.CONNECTED

        # A source timestamp set on the server is the sample's timestamp, to the microsecond.
        stamp = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        await nodes["Temp"].write_value(ua.DataValue(ua.Variant(21.5, ua.VariantType.Double), SourceTimestamp=stamp,
                                                     ServerTimestamp=stamp + timedelta(seconds=1)))
        await wait_for(lambda: sink.last(TEMP)[1] == 21.5, what="temp 21.5")
        assert sink.last(TEMP) == (us(stamp), 21.5, Quality.GOOD)

        # Status codes: uncertain keeps the value, bad drops it.
        await nodes["Count"].write_value(ua.DataValue(ua.Variant(9, ua.VariantType.Int32),
                                                      StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)))
        await wait_for(lambda: sink.last(COUNT)[1] == 9.0, what="count 9")
        assert sink.last(COUNT)[2] == Quality.UNCERTAIN
        await nodes["Count"].write_value(ua.DataValue(ua.Variant(10, ua.VariantType.Int32),
                                                      StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure)))
        await wait_for(lambda: sink.last(COUNT)[2] == Quality.BAD, what="count bad")
        assert sink.last(COUNT)[1] is None

        # New values of each type.
        await nodes["Running"].write_value(False)
        await nodes["Recipe"].write_value("B-7")
        await nodes["Pressure"].write_value(1000.0)
        await wait_for(lambda: sink.last(RECIPE)[1] == "B-7" and sink.last(PRESSURE)[1] == 10.0, what="new values")
        await wait_for(lambda: sink.last(RUNNING)[1] == 0.0, what="running false")
        assert conn.health.samples == sum(b.num_rows for b in sink.batches)
    finally:
        await conn.stop()
    assert conn.health.state == DeviceState.STOPPED


async def test_deadband_filters_small_changes(server: Any) -> None:
    port, _, nodes = server
    await nodes["Level"].write_value(10.0)
    conn, sink = await started(plant_text(port, TAGS))
    try:
        await wait_for(lambda: sink.values(LEVEL) == [10.0], what="initial level")
        # What was asked of the server: the device's publishing interval, each point's sampling interval
        # (its own or the device's), an absolute deadband filter only where the tag has a deadband.
        sub = conn._subscription
        assert sub is not None and sub.parameters.RequestedPublishingInterval == 50.0
        items = sub._monitored_items  # by client handle = point index + 1
        assert items[PRESSURE + 1].sampling_interval == 20.0 and items[TEMP + 1].sampling_interval == 0.0
        assert items[LEVEL + 1].mfilter.DeadbandType == ua.DeadbandType.Absolute
        assert items[LEVEL + 1].mfilter.DeadbandValue == 0.5
        assert not items[TEMP + 1].mfilter
        raw_before = conn.changes
        for v in (10.2, 10.4, 10.1):  # each within 0.5 of the previous value and of 10.0
            await nodes["Level"].write_value(v)
            await asyncio.sleep(0.12)  # longer than the 50 ms publishing interval
        await nodes["Level"].write_value(11.0)
        await wait_for(lambda: sink.values(LEVEL)[-1] == 11.0, what="level 11")
        assert sink.values(LEVEL) == [10.0, 11.0]
        # The server applied the filter: only the one big change came over the wire.
        assert conn.changes - raw_before == 1
    finally:
        await conn.stop()


async def test_write_uses_node_type_and_scaling(server: Any) -> None:
    port, _, nodes = server
    conn, _ = await started(plant_text(port, WRITE_TAGS))
    setpoint, speed, mode, pct, temp_ro, temp_forced = conn.points
    try:
        await conn.write(setpoint, 42.5)
        assert await nodes["Setpoint"].read_value() == 42.5
        await conn.write(speed, 12.7)  # an Int32 node: rounded, still Int32
        dv = await nodes["Speed"].read_data_value()
        assert dv.Value.Value == 13 and dv.Value.VariantType == ua.VariantType.Int32
        await conn.write(mode, "manual")
        assert await nodes["Mode"].read_value() == "manual"
        await conn.write(pct, 25.0)  # engineering 25 % -> raw 250 (0..1000 -> 0..100)
        dv = await nodes["Setpoint"].read_data_value()
        assert dv.Value.Value == 250.0 and dv.Value.VariantType == ua.VariantType.Double

        with pytest.raises(PointError, match="not writable"):
            await conn.write(temp_ro, 1.0)
        with pytest.raises(PointError, match="out of range"):
            await conn.write(speed, 2**31)
        with pytest.raises(PointError, match=r"node ns=2;s=Plant\.Oven\.Temp\).*refused"):  # not writable
            await conn.write(temp_forced, 1.0)
        assert await nodes["Temp"].read_value() != 1.0
    finally:
        await conn.stop()
    with pytest.raises(DeviceUnavailable):
        await conn.write(setpoint, 1.0)


async def test_start_returns_at_once_when_server_is_down() -> None:
    port = _free_port()
    config, points = points_of(plant_text(port, TAGS))
    sink = Collector()
    conn = OpcUaConnector("ua", config, points, sink)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await conn.start()
    returned = loop.time() - t0
    await wait_for(lambda: conn.health.last_error is not None, what="an error")
    assert returned < 0.5
    assert conn.health.state == DeviceState.RECONNECTING
    assert f"127.0.0.1:{port}" in (conn.health.last_error or "")
    await asyncio.sleep(0.5)  # several failed attempts
    assert conn.health.errors >= 2
    # All points BAD, once (a numeric and a text batch), however many attempts failed.
    assert sorted(i for b in sink.batches for i in b.column("tag_id").to_pylist()) == list(range(7))
    assert set(np.concatenate([b.column("quality").to_numpy() for b in sink.batches]).tolist()) == {Quality.BAD}
    t0 = loop.time()
    await conn.stop()
    assert loop.time() - t0 < 1.5
    assert conn.health.state == DeviceState.STOPPED


async def test_server_restart_reconnects_and_resubscribes() -> None:
    port = _free_port()
    srv, nodes = await make_server(port)
    tags = TAGS.split("- {name: ghost")[0]
    conn, sink = await started(plant_text(port, tags))
    try:
        await wait_for(lambda: sink.last(TEMP) is not None, what="initial temp")
        await srv.stop()
        await wait_for(lambda: conn.health.state != DeviceState.CONNECTED, what="loss detected")
        assert conn.health.last_error
        await wait_for(lambda: sink.last(TEMP)[2] == Quality.BAD, what="points bad")
        await asyncio.sleep(0.6)  # a few failed reconnect attempts
        bad_batches = [b for b in sink.batches if set(b.column("quality").to_pylist()) == {Quality.BAD}]
        bad_ids = sorted(i for b in bad_batches for i in b.column("tag_id").to_pylist())
        assert bad_ids == list(range(6))  # every point marked BAD exactly once
        assert conn.health.state == DeviceState.RECONNECTING

        await nodes["Temp"].write_value(55.0)  # changed while the connector was away
        await srv.start()
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, what="reconnected")
        await wait_for(lambda: sink.last(TEMP)[1:] == (55.0, Quality.GOOD), what="value after reconnect")
        await nodes["Temp"].write_value(56.0)
        await wait_for(lambda: sink.last(TEMP)[1] == 56.0, what="values flowing again")
        assert conn.health.reconnects == 1
    finally:
        await conn.stop()
        await srv.stop()
