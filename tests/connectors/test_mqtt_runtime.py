"""End to end: a Sparkplug edge node and a plain topic on a real Mosquitto -> the MQTT connector -> bus ->
DuckDB historian, in a running plantlink (``Runtime``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality
from tests.connectors.mosquitto import Edge, MosquittoServer, mosquitto
from tests.connectors.test_mqtt_connector import T0, G, edge_factory, spb
from tests.plants import plant_yaml
from tests.waiting import wait_for

__all__ = ["edge_factory"]  # the fixture, used here

PLANT = plant_yaml(
    site="windsor", timezone="America/Toronto", area="press",
    devices="""
    broker: {{protocol: mqtt, host: 127.0.0.1, port: {port}, reconnect_min: 100ms, reconnect_max: 500ms,
              sparkplug: {{group: Plant1, host_id: central, under: windsor/press/l1}}}}
    """,
    machines="""
    - name: p1
      tags:
        - {{name: speed, type: int, source: {{device: broker, metric: N1/D1/Speed}}}}
        - {{name: recipe, type: string, source: {{device: broker, metric: N1/D1/Recipe}}}}
        - {{name: temp, unit: degC, source: {{device: broker, topic: plant/p1/temp}}}}
    """)


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker") as srv:
        yield srv


def latest(rt: Runtime, path: str) -> dict[str, Any]:
    assert rt.historian is not None
    row = rt.historian.latest([rt.tag_ids[path]]).to_pylist()
    return row[0] if row else {}


async def test_sparkplug_and_plain_topics_reach_the_historian(broker: MosquittoServer, tmp_path: Path,
                                                              edge_factory: Callable[[int], Edge]) -> None:
    rt = Runtime(parse_plant(PLANT.format(port=broker.port)), tmp_path / "data", flush_interval=0.2)
    edge = edge_factory(broker.port)
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["broker"].health.ok, what="connected")
        edge.publish(f"spBv1.0/{G}/NBIRTH/N1", spb(0, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 0}]))
        edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D1", spb(1, [
            {"name": "Speed", "alias": 1, "datatype": pb.Int32, "int_value": 1200},
            {"name": "Recipe", "alias": 2, "datatype": pb.String, "string_value": "BRKT-4471"}]))
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", spb(2, [{"alias": 1, "int_value": 1250, "timestamp": T0 + 7}]))
        await broker.publish("plant/p1/temp", b'{"value": 181.25}')
        p = "windsor/press/l1/p1/"
        await wait_for(lambda: latest(rt, p + "speed").get("value") == 1250.0, what="speed stored")
        await wait_for(lambda: latest(rt, p + "recipe").get("text") == "BRKT-4471", what="recipe stored")
        await wait_for(lambda: latest(rt, p + "temp").get("value") == 181.25, what="temp stored")
        row = latest(rt, p + "speed")
        assert row["quality"] == Quality.GOOD and int(row["ts"].timestamp() * 1000) == T0 + 7
        edge.publish(f"spBv1.0/{G}/DDEATH/N1/D1", spb(3, []))
        await wait_for(lambda: latest(rt, p + "speed").get("quality") == Quality.BAD, what="speed bad after DDEATH")
        assert latest(rt, p + "temp")["quality"] == Quality.GOOD
    finally:
        await rt.stop()
