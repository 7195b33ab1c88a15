"""plantlink as a Sparkplug B edge node against a real Mosquitto: what it publishes is read back by our own
host state machine (``SparkplugHost``) and checked field by field in the protobuf: NBIRTH with every metric,
NDATA on change by alias, NCMD rebirth, NDEATH as the will (a cut connection) with the session's bdSeq, and on a
clean stop."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import pytest_asyncio

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import SparkplugHost, rebirth_payload
from plantlink.connectors.mqtt.sparkplug.values import properties_of
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, numeric_batch, text_batch
from tests.conftest import _free_port
from tests.connectors.mosquitto import CutProxy, MosquittoServer, mosquitto
from tests.plants import plant_yaml
from tests.waiting import wait_for

PLANT = plant_yaml(
    enterprise="Acme", site="windsor", timezone="America/Toronto", area="press",
    devices="plc: {protocol: mqtt, host: 127.0.0.1, enabled: false}",
    machines="""
    - name: p1
      tags:
        - {name: temp, unit: degC, source: {device: plc, topic: x/temp}}
        - {name: strokes, type: int, unit: count, source: {device: plc, topic: x/strokes}}
        - {name: running, type: bool, source: {device: plc, topic: x/running}}
        - {name: recipe, type: string, source: {device: plc, topic: x/recipe}}
    """) + """publish:
  mqtt: mqtt://127.0.0.1:{port}
  reconnect_min: 50ms
  reconnect_max: 200ms
  uns: {enabled: false}
  sparkplug: {group: Plant1, node: plantlink}
"""
M = "windsor/press/l1/p1/"
T0_US = 1_795_000_000_000_000
T0_MS = 1_795_000_000_000
G = "spBv1.0/Plant1"


class HostSide:
    """A paho subscriber to the group that keeps every message in order."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{G}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, m: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((m.topic, bytes(m.payload)))

    def of(self, kind: str) -> list[pb.Payload]:
        with self._lock:
            return [pb.Payload.FromString(p) for t, p in self.messages if t == f"{G}/{kind}/plantlink"]

    def all(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker") as srv:
        yield srv


@pytest_asyncio.fixture
async def proxy(broker: MosquittoServer) -> AsyncIterator[CutProxy]:
    px = CutProxy(_free_port(), broker.port)
    await px.start()
    yield px
    await px.stop()


def ids_of(rt: Runtime) -> dict[str, int]:
    return {p.removeprefix(M): i for p, i in rt.tag_ids.items() if p.startswith(M)}


def host_of(rt: Runtime) -> SparkplugHost:
    ids = ids_of(rt)
    return SparkplugHost("Plant1", {f"plantlink/{M}{name}": i for name, i in ids.items()},
                         frozenset({ids["recipe"]}))


def replay(host: SparkplugHost, messages: list[tuple[str, bytes]]) -> dict[int, tuple[float | None, str | None, int]]:
    """Feed every message to the host; the last (value, text, quality) per tag id; no issue may arise."""
    out: dict[int, tuple[float | None, str | None, int]] = {}
    for topic, payload in messages:
        result = host.handle(topic, payload, T0_US)
        assert not result.issues and not result.rebirths, (topic, result.issues)
        if result.batch is not None:
            for row in result.batch.to_pylist():
                out[row["tag_id"]] = (row["value"], row["text"], row["quality"])
    return out


async def test_birth_data_on_change_rebirth_and_clean_death(broker: MosquittoServer, tmp_path: Path) -> None:
    side = HostSide(broker.port)
    rt = Runtime(parse_plant(PLANT.replace("{port}", str(broker.port))), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        ids = ids_of(rt)
        await wait_for(lambda: side.of("NBIRTH"), what="NBIRTH")
        birth = side.of("NBIRTH")[0]
        assert birth.seq == 0
        by_name = {m.name: m for m in birth.metrics}
        assert by_name["bdSeq"].datatype == pb.Int64 and by_name["bdSeq"].long_value == 0
        assert by_name["Node Control/Rebirth"].boolean_value is False
        expected = {"temp": (pb.Double, "degC"), "strokes": (pb.Int64, "count"), "running": (pb.Boolean, ""),
                    "recipe": (pb.String, "")}
        for name, (datatype, unit) in expected.items():
            m = by_name[M + name]
            assert (m.alias, m.datatype, m.is_null) == (ids[name], datatype, True)  # no value yet
            assert properties_of(m.properties) == {"engUnit": unit}
        assert len(birth.metrics) == 6

        rt.ingest(numeric_batch([ids["temp"], ids["strokes"], ids["running"]], T0_US, [181.5, -3.0, 1.0],
                                Quality.GOOD))
        rt.ingest(text_batch([ids["recipe"]], T0_US + 1000, ["BRKT-4471"], Quality.GOOD))
        await wait_for(lambda: {m.alias for d in side.of("NDATA") for m in d.metrics} == set(ids.values()),
                       what="NDATA of the four tags")
        # the same temp again (no change) and a new strokes: the next NDATA carries strokes only
        n = len(side.of("NDATA"))
        rt.ingest(numeric_batch([ids["temp"], ids["strokes"]], T0_US + 2000, [181.5, 7.0], Quality.GOOD))
        await wait_for(lambda: len(side.of("NDATA")) > n, what="NDATA of strokes")
        last = side.of("NDATA")[-1]
        assert [(m.alias, m.name, m.long_value, m.timestamp) for m in last.metrics] == [
            (ids["strokes"], "", 7, T0_MS + 2)]
        data = side.of("NDATA")
        assert [d.seq for d in data] == list(range(1, len(data) + 1))
        # a bad sample without a value: a null metric
        rt.ingest(numeric_batch([ids["temp"]], T0_US + 3000, [0.0], Quality.BAD, missing=np.array([True])))
        await wait_for(lambda: any(m.is_null for m in side.of("NDATA")[-1].metrics), what="null temp")

        host = host_of(rt)
        values = replay(host, side.all())
        assert values[ids["temp"]] == (None, None, Quality.BAD)
        assert values[ids["strokes"]] == (7.0, None, Quality.GOOD)
        assert values[ids["running"]] == (1.0, None, Quality.GOOD)
        assert values[ids["recipe"]] == (None, "BRKT-4471", Quality.GOOD)

        # rebirth on NCMD: NBIRTH again, seq 0, same bdSeq, the last values in it
        seen = len(side.all())
        side.publish(f"{G}/NCMD/plantlink", rebirth_payload(T0_MS))
        await wait_for(lambda: len(side.of("NBIRTH")) == 2, what="rebirth")
        reborn = side.of("NBIRTH")[1]
        rb = {m.name: m for m in reborn.metrics}
        assert reborn.seq == 0 and rb["bdSeq"].long_value == 0
        assert rb[M + "strokes"].long_value == 7 and rb[M + "recipe"].string_value == "BRKT-4471"
        assert rb[M + "temp"].is_null and rb[M + "running"].boolean_value is True
        rt.ingest(numeric_batch([ids["strokes"]], T0_US + 4000, [8.0], Quality.GOOD))
        await wait_for(lambda: side.of("NDATA")[-1].seq == 1, what="NDATA after the rebirth, seq 1")
        values = replay(host, [m for m in side.all()[seen:] if "/NCMD/" not in m[0]])
        assert values[ids["strokes"]] == (8.0, None, Quality.GOOD)
    finally:
        await rt.stop()
    await wait_for(lambda: side.of("NDEATH"), what="NDEATH on a clean stop")
    death = side.of("NDEATH")[0]
    assert [(m.name, m.long_value) for m in death.metrics] == [("bdSeq", 0)]
    side.close()


async def test_will_is_the_death_with_bdseq_then_a_new_session(broker: MosquittoServer, proxy: CutProxy,
                                                                tmp_path: Path) -> None:
    side = HostSide(broker.port)
    rt = Runtime(parse_plant(PLANT.replace("{port}", str(proxy.port))), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        ids = ids_of(rt)
        await wait_for(lambda: side.of("NBIRTH"), what="NBIRTH")
        rt.ingest(numeric_batch([ids["temp"]], T0_US, [20.0], Quality.GOOD))
        await wait_for(lambda: side.of("NDATA"), what="NDATA")
        host = host_of(rt)
        assert replay(host, side.all())[ids["temp"]] == (20.0, None, Quality.GOOD)
        seen = len(side.all())
        proxy.cut()  # no DISCONNECT: the broker publishes the will
        await wait_for(lambda: side.of("NDEATH"), what="the will")
        assert [(m.name, m.long_value) for m in side.of("NDEATH")[0].metrics] == [("bdSeq", 0)]
        await wait_for(lambda: len(side.of("NBIRTH")) == 2, what="a new session's NBIRTH")
        nb = {m.name: m for m in side.of("NBIRTH")[1].metrics}
        assert nb["bdSeq"].long_value == 1 and nb[M + "temp"].double_value == 20.0
        # the host: the death makes the node's tags bad, the new birth brings the value back
        after = [m for m in side.all()[seen:] if m[0].endswith(("/NDEATH/plantlink", "/NBIRTH/plantlink"))]
        death_result = host.handle(*after[0], T0_US)
        assert after[0][0].endswith("NDEATH/plantlink") and death_result.batch is not None
        assert set(death_result.batch.column("quality").to_pylist()) == {Quality.BAD}
        assert replay(host, after[1:2])[ids["temp"]] == (20.0, None, Quality.GOOD)
    finally:
        await rt.stop()
        side.close()
