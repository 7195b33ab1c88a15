"""The MQTT connector against a real Mosquitto broker: plain topics (the connector contract suite, JSON and raw
payloads, bad input) and the Sparkplug B host (STATE, births, data, rebirth requests, deaths), with the edge
node played by paho-mqtt."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import pytest_asyncio

from plantlink import plugins
from plantlink.connectors.base import Connector, ConnectorPlugin, DeviceState
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.model import parse_plant
from plantlink.samples import Quality
from plantlink.testing.connector import Collector, ConnectorContract
from tests.conftest import _free_port
from tests.connectors.modbus_cases import points_of
from tests.connectors.mosquitto import CutProxy, Edge, MosquittoServer, mosquitto
from tests.waiting import wait_for

G = "Plant1"
T0 = 1_700_000_000_000


def plant_text(port: int, tags: str, extra: str = "") -> str:
    body = "\n".join("                  " + line for line in tags.strip("\n").splitlines())
    return f"""
enterprise: Test
devices:
  broker:
    protocol: mqtt
    host: 127.0.0.1
    port: {port}
    reconnect_min: 100ms
    reconnect_max: 400ms
    timeout: 2s
{extra}
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
{body}
"""


PLAIN_TAGS = """
- {name: temp, source: {device: broker, topic: plant/l/temp}}
- {name: speed, source: {device: broker, topic: plant/l/speed, payload: raw}}
- {name: recipe, type: string, source: {device: broker, topic: plant/l/recipe, payload: raw}}
- {name: level, source: {device: broker, topic: plant/l/tank, field: /data/level, timestamp_field: /ts}}
"""
RETAINED = {"plant/l/temp": b'{"value": 20.5}', "plant/l/speed": b"1500", "plant/l/recipe": b"A-12",
            "plant/l/tank": b'{"data": {"level": 0.75}, "ts": 1700000000000}'}


def connector(text: str, sink: Callable[[pa.RecordBatch], None]) -> Connector:
    plant = parse_plant(text)
    dev = plant.devices["broker"]
    plugin: ConnectorPlugin = plugins.load(plugins.CONNECTORS, dev.protocol)
    return plugin.connector("broker", dev.config, points_of(plant, "broker"), sink)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


class TestMqttPlainTopics(ConnectorContract):
    @pytest_asyncio.fixture
    async def server(self, tmp_path: Path) -> AsyncIterator[MosquittoServer]:
        srv = MosquittoServer(_free_port(), tmp_path, RETAINED)
        await srv.start()
        yield srv
        await srv.stop()

    def make_connector(self, server: MosquittoServer, sink: Callable[[pa.RecordBatch], None]) -> Connector:
        return connector(plant_text(server.port, PLAIN_TAGS), sink)

    async def set_value(self, server: MosquittoServer, value: int) -> None:
        await server.publish("plant/l/temp", json.dumps({"value": value}).encode(), retain=True)


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path, retained=RETAINED) as srv:
        yield srv


async def test_plain_values_timestamps_and_bad_input(broker: MosquittoServer) -> None:
    sink = Collector()
    conn = connector(plant_text(broker.port, PLAIN_TAGS), sink)
    await conn.start()
    try:
        await wait_for(lambda: len(sink.latest()) == 4, what="the four retained values")
        assert sink.latest() == {1: (20.5, Quality.GOOD), 2: (1500.0, Quality.GOOD), 3: ("A-12", Quality.GOOD),
                                 4: (0.75, Quality.GOOD)}
        assert [ts for tid, ts, _, _ in sink.rows() if tid == 4] == [T0 * 1000]  # the payload's own time
        n = len(sink.rows())
        await broker.publish("plant/l/temp", b'{"value": "hot"}')  # a string where a number is mapped
        await broker.publish("plant/l/tank", b'{"data": {}, "ts": 1700000000000}')  # no value at the pointer
        await broker.publish("plant/l/speed", b"fast")  # raw, not a number
        await broker.publish("plant/l/temp", b"{not json")
        await wait_for(lambda: conn.health.invalid_replies == 4, what="four bad messages counted")
        await broker.publish("plant/l/temp", b'{"value": 21}')
        await wait_for(lambda: sink.latest()[1] == (21.0, Quality.GOOD), what="the next good value")
        assert len(sink.rows()) == n + 1  # nothing stored from the bad ones
        assert conn.health.state == DeviceState.CONNECTED
    finally:
        await conn.stop()


# -- Sparkplug B ------------------------------------------------------------------------------------------------
SPB_TAGS = """
- {name: temp, source: {device: broker, metric: N1/Temp}}
- {name: speed, source: {device: broker, metric: N1/D1/Speed}}
- {name: recipe, type: string, source: {device: broker, metric: N1/D1/Recipe}}
"""
SPB_EXTRA = f"    sparkplug: {{group: {G}, host_id: central, under: s/a/l, rebirth_interval: 100ms}}"


def spb(seq: int | None, metrics: list[dict[str, object]], ts: int = T0) -> bytes:
    msg = pb.Payload(timestamp=ts)
    if seq is not None:
        msg.seq = seq
    for m in metrics:
        msg.metrics.add(**m)  # type: ignore[arg-type]
    return msg.SerializeToString()


@pytest.fixture
def edge_factory() -> Iterator[Callable[[int], Edge]]:
    edges: list[Edge] = []

    def make(port: int) -> Edge:
        e = Edge(port, ["spBv1.0/STATE/#", f"spBv1.0/{G}/NCMD/#"])
        edges.append(e)
        return e

    yield make
    for e in edges:
        e.close()


async def test_sparkplug_host_end_to_end(broker: MosquittoServer, edge_factory: Callable[[int], Edge]) -> None:
    sink = Collector()
    conn = connector(plant_text(broker.port, SPB_TAGS, SPB_EXTRA), sink)
    edge = edge_factory(broker.port)
    await conn.start()
    try:
        state = "spBv1.0/STATE/central"
        await wait_for(lambda: any(t == state for t, _, _ in edge.received), what="the host's STATE")
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, what="connected")
        body = json.loads(next(p for t, p, _ in edge.received if t == state))
        assert body["online"] is True and isinstance(body["timestamp"], int)
        # someone else says the host is offline (a late will of an earlier session): it says online again
        edge.client.publish(state, json.dumps({"online": False, "timestamp": 1}), qos=1, retain=True)
        await wait_for(lambda: [json.loads(p) for t, p, _ in edge.received if t == state][-1] == body,
                       what="STATE online re-asserted")
        edge.publish(f"spBv1.0/{G}/NBIRTH/N1", spb(0, [
            {"name": "bdSeq", "datatype": pb.Int64, "long_value": 3},
            {"name": "Temp", "alias": 1, "datatype": pb.Double, "double_value": 20.0}]))
        edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D1", spb(1, [
            {"name": "Speed", "alias": 2, "datatype": pb.UInt32, "int_value": 1200},
            {"name": "Recipe", "alias": 3, "datatype": pb.String, "string_value": "B-7"}]))
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", spb(2, [{"alias": 2, "int_value": 1250, "timestamp": T0 + 10}]))
        await wait_for(lambda: sink.latest() == {1: (20.0, Quality.GOOD), 2: (1250.0, Quality.GOOD),
                                                 3: ("B-7", Quality.GOOD)}, what="births and data")
        assert (2, (T0 + 10) * 1000, 1250.0, Quality.GOOD) in sink.rows()
        # a gap in the sequence: the host asks N1 for a rebirth over NCMD
        edge.publish(f"spBv1.0/{G}/NDATA/N1", spb(9, [{"alias": 1, "double_value": 21.0}]))
        ncmd = f"spBv1.0/{G}/NCMD/N1"
        await wait_for(lambda: any(t == ncmd for t, _, _ in edge.received), what="a rebirth request")
        cmd = pb.Payload.FromString(next(p for t, p, _ in edge.received if t == ncmd))
        assert [(m.name, m.boolean_value) for m in cmd.metrics] == [("Node Control/Rebirth", True)]
        assert conn.rebirths == 1  # type: ignore[attr-defined]
        # bad input: not protobuf, and a topic of the group outside the message types: counted, never stored
        edge.publish(f"spBv1.0/{G}/NDATA/N1", b"\x08\xff\xff")
        edge.publish(f"spBv1.0/{G}/NOPE/N1", spb(10, []))
        await wait_for(lambda: conn.health.invalid_replies == 2, what="two bad messages counted")
        # a death of an earlier session is ignored; the current one makes the node's tags bad
        edge.publish(f"spBv1.0/{G}/NDEATH/N1", spb(None, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 2}]))
        edge.publish(f"spBv1.0/{G}/NDEATH/N1", spb(None, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 3}]))
        await wait_for(lambda: all(q == Quality.BAD for _, q in sink.latest().values()), what="the node's tags bad")
        assert conn.host is not None and conn.host.stale_deaths == 1  # type: ignore[attr-defined]
    finally:
        await conn.stop()
    await wait_for(lambda: [json.loads(p)["online"] for t, p, _ in edge.received if t == state][-1:] == [False],
                   what="STATE offline after a clean stop")


async def test_sparkplug_host_last_will_when_the_connection_drops(broker: MosquittoServer,
                                                                 edge_factory: Callable[[int], Edge]) -> None:
    """The broker, not the host, announces the host offline (its will) when the host's connection is gone."""
    proxy = CutProxy(_free_port(), broker.port)
    await proxy.start()
    conn = connector(plant_text(proxy.port, SPB_TAGS, SPB_EXTRA), Collector())
    edge = edge_factory(broker.port)
    await conn.start()
    try:
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED, what="connected")
        proxy.cut()  # the TCP connection dies without a DISCONNECT: the broker sends the will
        await wait_for(lambda: any(t == "spBv1.0/STATE/central" and not json.loads(p)["online"]
                                   for t, p, _ in edge.received), what="the will: STATE offline")
        await wait_for(lambda: conn.health.state == DeviceState.CONNECTED and conn.health.reconnects >= 1,
                       what="reconnected")
    finally:
        await conn.stop()
        await proxy.stop()
