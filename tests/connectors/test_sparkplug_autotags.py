"""Tags from Sparkplug B births (``sparkplug: {auto_tags: ...}``), end to end: an edge node (paho-mqtt) on a real
Mosquitto -> the MQTT connector of a running plantlink (``Runtime``) -> one model change through the model
service (audited) -> the samples in the historian under the new tags; the bound, bad names, the default (off),
a restart, and the engineer's own apply keeping them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from typer.testing import CliRunner

from plantlink.autotags import ACTOR, AUTO_TAGS_FILE, load_overlay, merge_text, save_overlay
from plantlink.cli import app
from plantlink.connectors.mqtt.autotags import MAX_HELD_ROWS, tag_name
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.errors import ConfigError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.connectors.mosquitto import Edge, MosquittoServer, mosquitto
from tests.connectors.test_mqtt_connector import G, edge_factory, spb
from tests.plants import plant_yaml
from tests.waiting import wait_for

__all__ = ["edge_factory"]  # the fixture, used here

LINE = "windsor/press/l1"
#: An hour ago: samples older than the historian's retention would be deleted at the restart.
T1 = time.time_ns() // 1_000_000 - 3_600_000
AUTO = f"auto_tags: {{{{under: {LINE}, max_tags: 5, settle: 1s}}}}"


def plant(auto: str = AUTO) -> str:
    return plant_yaml(
        site="windsor", timezone="America/Toronto", area="press",
        devices=f"""
        broker: {{{{protocol: mqtt, host: 127.0.0.1, port: {{port}}, reconnect_min: 100ms, reconnect_max: 500ms,
                  sparkplug: {{{{group: {G}, host_id: central{', ' + auto if auto else ''}}}}}}}}}
        """,
        machines="""
        - name: p1
          tags:
            - {{name: speed, type: int, source: {{device: broker, metric: N1/D1/Speed}}}}
        """)


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker") as srv:
        yield srv


def msg(seq: int, metrics: list[dict[str, Any]]) -> bytes:
    return spb(seq, metrics, ts=T1)


def unit(text: str) -> dict[str, Any]:
    return {"properties": pb.Payload.PropertySet(keys=["engUnit"], values=[
        pb.Payload.PropertyValue(type=pb.String, string_value=text)])}


def births(edge: Edge, bdseq: int) -> None:
    """NBIRTH and the DBIRTHs of D1 and D2 (seq 0, 1, 2)."""
    edge.publish(f"spBv1.0/{G}/NBIRTH/N1", msg(0, [
        {"name": "bdSeq", "datatype": pb.Int64, "long_value": bdseq},
        {"name": "Node Control/Rebirth", "datatype": pb.Boolean, "boolean_value": False},
        {"name": "Uptime", "alias": 9, "datatype": pb.Int64, "long_value": 77}]))
    edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D1", msg(1, [
        {"name": "Speed", "alias": 1, "datatype": pb.Int32, "int_value": 1200},
        {"name": "Temp", "alias": 2, "datatype": pb.Float, "float_value": 20.5, **unit("degC")},
        {"name": "Recipe", "alias": 3, "datatype": pb.String, "string_value": "BRKT-4471"},
        {"name": "Bad Name", "alias": 4, "datatype": pb.Double, "double_value": 1.0}]))
    edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D2", msg(2, [
        {"name": "Level", "alias": 1, "datatype": pb.Double, "double_value": 0.75},
        {"name": "Motor/Current", "alias": 2, "datatype": pb.Float, "float_value": 3.5, **unit("A")}]))


def values(rt: Runtime, path: str) -> list[Any]:
    assert rt.historian is not None
    tag_id = rt.tag_ids.get(path)
    if tag_id is None:
        return []
    rows = rt.historian.raw(tag_id, T1 * 1000, (T1 + 60_000) * 1000).to_pylist()
    return [r.get("text", r["value"]) for r in rows]


def applies(rt: Runtime) -> list[Any]:
    assert rt.audit is not None
    return list(rt.audit.query(kind="model.apply", actor=ACTOR))


async def test_births_become_tags_once_with_their_samples(broker: MosquittoServer, tmp_path: Path,
                                                          edge_factory: Callable[[int], Edge]) -> None:
    text = plant().format(port=broker.port)
    rt = Runtime(parse_plant(text), tmp_path / "data", flush_interval=0.2)
    edge = edge_factory(broker.port)
    await rt.start()
    try:
        conn = rt.connectors["broker"]
        await wait_for(lambda: conn.health.ok, what="connected")
        births(edge, 0)
        # before the change is applied: its samples are held, then stored under the new tags
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", msg(3, [{"alias": 2, "float_value": 21.5, "timestamp": T1 + 10}]))
        temp = f"{LINE}/N1-D1/Temp"
        await wait_for(lambda: temp in rt.tag_ids, what="the tags of the births in the running model")
        assert rt.connectors["broker"] is conn and conn.health.reconnects == 0  # took them while running
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", msg(4, [{"alias": 2, "float_value": 22.5, "timestamp": T1 + 20},
                                                         {"alias": 3, "string_value": "X-1", "timestamp": T1 + 20}]))
        await wait_for(lambda: values(rt, temp) == [20.5, 21.5, 22.5], what="the birth's and both DDATA's values")
        await wait_for(lambda: values(rt, f"{LINE}/N1-D1/Recipe") == ["BRKT-4471", "X-1"], what="text values")
        assert values(rt, f"{LINE}/N1/Uptime") == [77.0] and values(rt, f"{LINE}/N1-D2/Motor.Current") == [3.5]
        tags = {t.path: t.tag for t in rt.plant.tags}
        assert (tags[temp].type, tags[temp].unit) == ("float", "degC")
        assert tags[f"{LINE}/N1-D1/Recipe"].type == "string" and tags[f"{LINE}/N1/Uptime"].type == "int"
        assert tags[f"{LINE}/N1-D2/Motor.Current"].unit == "A" and f"{LINE}/N1-D2/Level" in tags
        assert not any(p.endswith(("bdSeq", "Rebirth")) or "Bad" in p for p in tags)
        (entry,) = applies(rt)  # NBIRTH and two DBIRTHs: one change, audited with its diff
        assert len(entry.details["changes"]) >= 5
        health = conn.health.to_dict()
        assert (health["auto_tags"], health["auto_tags_refused"]) == (5, 1)
        assert "Bad Name" in health["issues"][0]

        # the same births again (a rebirth): nothing added
        births(edge, 1)
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", msg(3, [{"alias": 2, "float_value": 23.5, "timestamp": T1 + 30}]))
        await wait_for(lambda: values(rt, temp)[-1:] == [23.5], what="data after the rebirth")
        assert len(applies(rt)) == 1 and conn.health.to_dict()["auto_tags_pending"] == 0

        # beyond max_tags: refused, counted, a reason of the health report
        edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D3", msg(4, [{"name": "Extra", "datatype": pb.Double,
                                                           "double_value": 1.0}]))
        await wait_for(lambda: conn.health.to_dict()["auto_tags_refused"] == 2, what="the metric beyond max_tags")
        assert rt.services is not None
        report = rt.services.health.report(Principal("v", {"windsor": "viewer"}))
        assert report.status == "degraded" and any("max_tags (5)" in r for r in report.reasons), report.reasons

        # the engineer's own file (without them) keeps them: its plan changes nothing
        assert rt.services.model.plan(Principal("e", {"*": "engineer"}), text).empty
        assert (tmp_path / "data" / AUTO_TAGS_FILE).is_file()
    finally:
        await rt.stop()

    printed = CliRunner().invoke(app, ["auto-tags", "--data-dir", str(tmp_path / "data")])  # to paste
    assert printed.exit_code == 0 and f"# device broker: paste these machines under the line {LINE}" in printed.stdout
    machines = yaml.safe_load(printed.stdout.split("\n", 1)[1].split("\n5 tag(s)")[0])["machines"]
    assert [m["name"] for m in machines] == ["N1", "N1-D1", "N1-D2"]
    assert machines[1]["tags"][0] == {"name": "Temp", "unit": "degC",
                                      "source": {"device": "broker", "metric": "N1/D1/Temp"}}

    rt2 = Runtime(parse_plant(text), tmp_path / "data", flush_interval=0.2)  # a restart: still there
    await rt2.start()
    try:
        assert {temp, f"{LINE}/N1-D2/Level"} <= set(rt2.tag_ids) and rt2.tag_ids[temp] == rt.tag_ids[temp]
        assert values(rt2, temp) == [20.5, 21.5, 22.5, 23.5]
        assert rt2.connectors["broker"].health.to_dict()["auto_tags"] == 5
    finally:
        await rt2.stop()


async def test_off_by_default(broker: MosquittoServer, tmp_path: Path, edge_factory: Callable[[int], Edge]) -> None:
    rt = Runtime(parse_plant(plant(auto="").format(port=broker.port)), tmp_path / "data", flush_interval=0.2)
    edge = edge_factory(broker.port)
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["broker"].health.ok, what="connected")
        births(edge, 0)
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", msg(3, [{"alias": 1, "int_value": 1300, "timestamp": T1 + 5}]))
        await wait_for(lambda: values(rt, "windsor/press/l1/p1/speed") == [1200.0, 1300.0], what="speed stored")
        assert [t.path for t in rt.plant.tags] == ["windsor/press/l1/p1/speed"]
        assert not applies(rt) and not (tmp_path / "data" / AUTO_TAGS_FILE).exists()
    finally:
        await rt.stop()


def test_settings_are_checked_where_written() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_plant(plant(auto="auto_tags: {{under: windsor/press/l9}}").format(port=1883))
    (problem,) = exc.value.problems
    assert (problem.line, problem.path) == (4, "device broker sparkplug.auto_tags.under")
    assert "no line 'windsor/press/l9'" in problem.message and LINE in problem.message
    with pytest.raises(ConfigError) as exc:
        parse_plant(plant(auto="auto_tags: {{under: windsor/press, max_tags: 0}}").format(port=1883))
    messages = " ".join(p.message for p in exc.value.problems)
    assert "site/area/line" in messages and "greater than or equal to 1" in messages


def test_metric_names_that_cannot_be_tag_names() -> None:
    assert tag_name("Motor/Current") == ("Motor.Current", "")
    assert tag_name("Bad Name")[0] is None and "letters, digits" in tag_name("Bad Name")[1]
    assert tag_name("x" * 65)[0] is None and "at most 64" in tag_name("x" * 65)[1]
    assert MAX_HELD_ROWS >= 10_000


async def test_a_tag_the_model_cannot_take_is_refused_and_its_samples_dropped(
        broker: MosquittoServer, tmp_path: Path, edge_factory: Callable[[int], Edge]) -> None:
    """Machine N1-D1 already has a tag Temp (from a plain topic): the metric Temp is refused, Pressure created,
    and the samples Temp was held under reach no tag (the historian refuses none as unknown)."""
    text = plant().format(port=broker.port).replace(
        "              - name: p1\n",
        "              - name: N1-D1\n                tags: [{name: Temp, source: {device: broker, topic: t/temp}}]\n"
        "              - name: p1\n")
    rt = Runtime(parse_plant(text), tmp_path / "data", flush_interval=0.2)
    edge = edge_factory(broker.port)
    await rt.start()
    try:
        conn = rt.connectors["broker"]
        await wait_for(lambda: conn.health.ok, what="connected")
        edge.publish(f"spBv1.0/{G}/NBIRTH/N1", msg(0, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 0}]))
        edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D1", msg(1, [
            {"name": "Temp", "alias": 1, "datatype": pb.Float, "float_value": 20.5},
            {"name": "Pressure", "alias": 2, "datatype": pb.Float, "float_value": 1.5}]))
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", msg(2, [{"alias": 1, "float_value": 21.5, "timestamp": T1 + 1},
                                                         {"alias": 2, "float_value": 1.625, "timestamp": T1 + 1}]))
        await wait_for(lambda: conn.health.to_dict().get("auto_tags_refused") == 1, what="Temp refused")
        assert "another tag of that name" in conn.health.issues[0]
        await wait_for(lambda: values(rt, f"{LINE}/N1-D1/Pressure") == [1.5, 1.625], what="Pressure stored")
        edge.publish(f"spBv1.0/{G}/DDATA/N1/D1", msg(3, [{"alias": 1, "float_value": 22.5, "timestamp": T1 + 2},
                                                         {"alias": 2, "float_value": 1.75, "timestamp": T1 + 2}]))
        await wait_for(lambda: values(rt, f"{LINE}/N1-D1/Pressure")[-1:] == [1.75], what="the next Pressure")
        assert values(rt, f"{LINE}/N1-D1/Temp") == []
        assert rt.historian is not None and not rt.historian.refused.get("unknown_tag")
        assert conn.health.to_dict()["auto_tags_lost"] == 2  # Temp's birth value and its first DDATA
    finally:
        await rt.stop()


async def test_a_node_with_fifty_devices_is_one_change(broker: MosquittoServer, tmp_path: Path,
                                                       edge_factory: Callable[[int], Edge]) -> None:
    text = plant(auto=f"auto_tags: {{{{under: {LINE}, settle: 2s}}}}").format(port=broker.port)
    rt = Runtime(parse_plant(text), tmp_path / "data", flush_interval=0.2)
    edge = edge_factory(broker.port)
    await rt.start()
    try:
        await wait_for(lambda: rt.connectors["broker"].health.ok, what="connected")
        edge.publish(f"spBv1.0/{G}/NBIRTH/N2", msg(0, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 0}]))
        for d in range(50):
            edge.publish(f"spBv1.0/{G}/DBIRTH/N2/D{d}", msg(d + 1, [
                {"name": "A", "alias": 1, "datatype": pb.Double, "double_value": d},
                {"name": "B", "alias": 2, "datatype": pb.Int32, "int_value": d}]))
        await wait_for(lambda: len(rt.plant.tags) == 101, what="100 tags from 50 DBIRTHs")
        assert len(applies(rt)) == 1
        await wait_for(lambda: values(rt, f"{LINE}/N2-D49/A") == [49.0] and values(rt, f"{LINE}/N2-D7/B") == [7.0],
                       what="the births' values under their tags")
    finally:
        await rt.stop()


def test_a_tag_moved_into_the_model_is_no_longer_taken_from_the_file(tmp_path: Path) -> None:
    """The engineer pasted Temp into the model file: only Recipe still comes from the auto-tags file; with
    auto_tags off, nothing does."""
    overlay = {"broker": {"under": LINE, "machines": [{"name": "N1-D1", "description": "d", "tags": [
        {"name": "Temp", "unit": "degC", "source": {"device": "broker", "metric": "N1/D1/Temp"}},
        {"name": "Recipe", "type": "string", "source": {"device": "broker", "metric": "N1/D1/Recipe"}}]}]}}
    save_overlay(tmp_path / AUTO_TAGS_FILE, overlay)
    assert load_overlay(tmp_path / AUTO_TAGS_FILE) == overlay
    moved = "                  - {{name: Temp, unit: degC, source: {{device: broker, metric: N1/D1/Temp}}}}\n"
    base = plant().replace("              - name: p1\n", f"              - name: N1-D1\n                tags:\n{moved}"
                                                          "              - name: p1\n")
    merged = parse_plant(merge_text(parse_plant(base.format(port=1)), overlay) or "")
    assert sorted(t.path for t in merged.tags) == [f"{LINE}/N1-D1/Recipe", f"{LINE}/N1-D1/Temp",
                                                   f"{LINE}/p1/speed"]
    assert merge_text(parse_plant(plant(auto="").format(port=1)), overlay) is None
