"""Writes over MQTT, end to end: the governed control path (``ControlService`` of a running plantlink) writes
Sparkplug metrics (DCMD for a device's, NCMD for a node's) and plain-topic tags; a real Mosquitto carries them
to a paho-mqtt edge node of the test, which checks them value by value and answers with its new value."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from plantlink.connectors.mqtt.config import MqttPoint
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.control.records import ControlRefused, Reason
from plantlink.errors import ConfigError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.connectors.mosquitto import Edge, MosquittoServer, mosquitto
from tests.connectors.test_mqtt_connector import G, spb
from tests.plants import plant_yaml
from tests.waiting import wait_for

M = "s1/a1/l1/p1/"
OPS = Principal("olga", {"s1": "operator"})

PLANT = plant_yaml(
    devices="""
    broker: {{protocol: mqtt, host: 127.0.0.1, port: {port}, reconnect_min: 100ms, reconnect_max: 500ms,
              timeout: 2s, sparkplug: {{group: Plant1, host_id: central}}}}
    """,
    machines="""
    - name: p1
      tags:
        - {{name: speed, type: int, writable: true, control: {{min: 0, max: 3000, verify_timeout: 5s}},
            source: {{device: broker, metric: N1/D1/Speed}}}}
        - {{name: small, type: int, writable: true, control: {{verify_timeout: 5s}},
            source: {{device: broker, metric: N1/D1/Small}}}}
        - {{name: ratio, writable: true, control: {{verify_timeout: 5s}},
            source: {{device: broker, metric: N1/D1/Ratio}}}}
        - {{name: recipe, type: string, writable: true, control: {{verify_timeout: 5s}},
            source: {{device: broker, metric: N1/D1/Recipe}}}}
        - {{name: mode, type: bool, writable: true, control: {{verify_timeout: 5s}},
            source: {{device: broker, metric: N1/Mode}}}}
        - {{name: temp_sp, writable: true, control: {{min: 0, max: 300, verify_timeout: 5s}},
            source: {{device: broker, topic: plant/p1/temp_sp, write_topic: plant/p1/temp_sp/set}}}}
        - {{name: count_sp, type: int, writable: true, control: {{verify_timeout: 5s}},
            source: {{device: broker, topic: plant/p1/count, payload: raw, write_topic: plant/p1/count/cmd}}}}
        - {{name: temp, source: {{device: broker, topic: plant/p1/temp}}}}
    """)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker") as srv:
        yield srv


@pytest_asyncio.fixture
async def rig(broker: MosquittoServer, tmp_path: Path) -> AsyncIterator[tuple[Runtime, Edge]]:
    rt = Runtime(parse_plant(PLANT.format(port=broker.port)), tmp_path / "data", flush_interval=0.2)
    edge = Edge(broker.port, [f"spBv1.0/{G}/NCMD/#", f"spBv1.0/{G}/DCMD/#", "plant/p1/#"])
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["broker"].health.ok, what="connected")
        t = now_ms()
        edge.publish(f"spBv1.0/{G}/NBIRTH/N1", spb(0, [
            {"name": "bdSeq", "datatype": pb.Int64, "long_value": 0},
            {"name": "Mode", "datatype": pb.Boolean, "boolean_value": False, "timestamp": t}], t))
        edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D1", spb(1, [
            {"name": "Speed", "alias": 1, "datatype": pb.Int32, "int_value": 1200, "timestamp": t},
            {"name": "Small", "alias": 2, "datatype": pb.UInt8, "int_value": 7, "timestamp": t},
            {"name": "Ratio", "alias": 3, "datatype": pb.Float, "float_value": 0.5, "timestamp": t},
            {"name": "Recipe", "alias": 4, "datatype": pb.String, "string_value": "A-1", "timestamp": t}], t))
        await broker.publish("plant/p1/temp_sp", b'{"value": 20.0}')
        await broker.publish("plant/p1/count", b"3")
        await wait_for(lambda: all(r["quality"] == 192 for r in rt.latest.table(
            [rt.tag_ids[M + n] for n in ("speed", "small", "ratio", "recipe", "mode", "temp_sp", "count_sp")]
        ).to_pylist()), what="first values")
        yield rt, edge
    finally:
        edge.close()
        await rt.stop()


def commands(edge: Edge, topic: str) -> list[bytes]:
    return [p for t, p, _ in list(edge.received) if t == topic]


async def write(rt: Runtime, edge: Edge, path: str, value: Any, topic: str,
                answer: Callable[[bytes], None]) -> tuple[bytes, str]:
    """Stage and confirm ``value`` as an operator; once the command arrives on ``topic``, ``answer`` it (the
    device's new value); the command's payload and the outcome's status."""
    assert rt.control is not None
    before = len(commands(edge, topic))
    staged = await rt.control.stage_async(OPS, path, value)
    assert staged.ok, staged.refusals
    confirm = asyncio.create_task(rt.control.confirm(OPS, staged.id, f"c-{path}-{value}"))
    await wait_for(lambda: len(commands(edge, topic)) > before or confirm.done(), what=f"a command on {topic}")
    assert not confirm.done(), confirm.result()
    payload = commands(edge, topic)[-1]
    answer(payload)
    out = await confirm
    return payload, out.status


def one_metric(payload: bytes) -> pb.Payload.Metric:
    msg = pb.Payload.FromString(payload)
    assert len(msg.metrics) == 1 and abs(msg.timestamp - now_ms()) < 60_000
    m = msg.metrics[0]
    assert m.timestamp == msg.timestamp
    return m


async def test_dcmd_ncmd_and_plain_writes_reach_the_device(rig: tuple[Runtime, Edge]) -> None:
    rt, edge = rig
    seq = iter(range(2, 200))

    def ddata(metric: dict[str, Any]) -> Callable[[bytes], None]:
        return lambda _p: edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", spb(next(seq), [metric], now_ms()))

    dcmd = f"spBv1.0/{G}/DCMD/N1/D1"
    payload, status = await write(rt, edge, M + "speed", 1500, dcmd, ddata({"alias": 1, "int_value": 1500}))
    m = one_metric(payload)
    assert (m.name, m.alias, m.datatype, m.WhichOneof("value"), m.int_value) == ("Speed", 1, pb.Int32,
                                                                                  "int_value", 1500)
    assert status == "applied"
    payload, status = await write(rt, edge, M + "ratio", 0.25, dcmd, ddata({"alias": 3, "float_value": 0.25}))
    m = one_metric(payload)
    assert (m.name, m.alias, m.datatype, m.WhichOneof("value"), m.float_value) == ("Ratio", 3, pb.Float,
                                                                                  "float_value", 0.25)
    assert status == "applied"
    payload, status = await write(rt, edge, M + "recipe", "B-2", dcmd, ddata({"alias": 4, "string_value": "B-2"}))
    m = one_metric(payload)
    assert (m.name, m.alias, m.datatype, m.string_value) == ("Recipe", 4, pb.String, "B-2")
    assert status == "applied"

    ncmd = f"spBv1.0/{G}/NCMD/N1"
    payload, status = await write(rt, edge, M + "mode", True, ncmd, lambda _p: edge.publish(
        f"spBv1.0/{G}/NDATA/N1", spb(next(seq), [{"name": "Mode", "boolean_value": True}], now_ms())))
    m = one_metric(payload)
    assert (m.name, m.HasField("alias"), m.datatype, m.WhichOneof("value"), m.boolean_value) == (
        "Mode", False, pb.Boolean, "boolean_value", True)
    assert status == "applied"

    payload, status = await write(rt, edge, M + "temp_sp", 42.5, "plant/p1/temp_sp/set", lambda _p: edge.publish(
        "plant/p1/temp_sp", b'{"value": 42.5}'))
    assert json.loads(payload) == {"value": 42.5} and status == "applied"
    payload, status = await write(rt, edge, M + "count_sp", 12, "plant/p1/count/cmd", lambda _p: edge.publish(
        "plant/p1/count", b"12"))
    assert payload == b"12" and status == "applied"
    # a command is not a value: the edge's own NCMD/DCMD topics and write topics never became samples
    assert rt.connectors["broker"].commands == 6  # type: ignore[attr-defined]


async def test_a_value_the_metric_cannot_carry_is_not_sent(rig: tuple[Runtime, Edge]) -> None:
    rt, edge = rig
    assert rt.control is not None
    staged = await rt.control.stage_async(OPS, M + "small", 300)  # a UInt8 metric: 0..255
    assert staged.ok
    out = await rt.control.confirm(OPS, staged.id, "c-small")
    assert out.status == "failed" and "UInt8" in out.message, out
    assert commands(edge, f"spBv1.0/{G}/DCMD/N1/D1") == []
    staged = await rt.control.stage_async(OPS, M + "speed", 5000)  # the tag's limits: refused, nothing sent
    assert not staged.ok and staged.refusals[0].reason == Reason.LIMIT
    with pytest.raises(ControlRefused) as exc:  # not writable: refused at stage
        await rt.control.stage_async(OPS, M + "temp", 1.0)
    assert exc.value.reason == Reason.NOT_WRITABLE
    assert commands(edge, f"spBv1.0/{G}/DCMD/N1/D1") == []


def test_a_writable_plain_topic_tag_needs_its_write_topic() -> None:
    bad = PLANT.replace(", write_topic: plant/p1/temp_sp/set", "")
    with pytest.raises(ConfigError, match="write_topic"):
        parse_plant(bad.format(port=1883))
    with pytest.raises(ValueError, match="own topic"):
        MqttPoint(topic="a/b", write_topic="a/b")
    with pytest.raises(ValueError, match="plain-topic"):
        MqttPoint(metric="N1/M", write_topic="a/b")
    not_writable = PLANT.replace("- {{name: temp, source: {{device: broker, topic: plant/p1/temp}}}}",
                                 "- {{name: temp, source: {{device: broker, topic: plant/p1/temp, write_topic: x}}}}")
    with pytest.raises(ConfigError, match="not writable"):
        parse_plant(not_writable.format(port=1883))
