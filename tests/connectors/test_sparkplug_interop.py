"""Interoperability with an independent Sparkplug B implementation, ``mqtt-spb-wrapper`` (PyPI), in both
directions through a real Mosquitto: its edge node's and device's births decoded by plantlink's host, and
plantlink's edge node (the ``publish: sparkplug`` section) decoded by its SCADA host application.

``mqtt-spb-wrapper`` pins protobuf 3.20 and paho-mqtt 1.6, which cannot share plantlink's environment, so it
runs in an interpreter of its own: ``PLANTLINK_SPB_WRAPPER_PYTHON`` names one, else the ``spb_wrapper`` fixture
makes a virtual environment once (``.venv-spb-wrapper`` beside ``.venv``) with pip from the package index.
Where that cannot be done the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import SparkplugHost
from plantlink.samples import now_us
from tests.conftest import _free_port
from tests.connectors.mosquitto import MosquittoServer
from tests.waiting import wait_for

WRAPPER = "mqtt-spb-wrapper==2.1.2"
VENV = Path(__file__).resolve().parents[2] / ".venv-spb-wrapper"


def _wrapper_python() -> str:
    """An interpreter that imports ``mqtt_spb_wrapper``: the one named, or a virtual environment made once."""
    named = os.environ.get("PLANTLINK_SPB_WRAPPER_PYTHON", "")
    if named:
        return named
    python = VENV / "bin" / "python"
    if not python.exists() or subprocess.run([python, "-c", "import mqtt_spb_wrapper"], capture_output=True).returncode:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", WRAPPER], check=True,
                       capture_output=True, timeout=600)
    return str(python)


@pytest.fixture(scope="module")
def spb_wrapper() -> Iterator[str]:
    try:
        python = _wrapper_python()
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        why = f"{WRAPPER} could not be installed in its own environment: {exc} {detail.decode(errors='replace')[-400:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    yield python

EDGE = """
import sys, time
from mqtt_spb_wrapper import MqttSpbEntityEdgeNode, MqttSpbEntityDevice
port, group = int(sys.argv[1]), sys.argv[2]
node = MqttSpbEntityEdgeNode(group, "N1")
node.data.set_value("Temp", 21.5)
dev = MqttSpbEntityDevice(group, "N1", "D1")
dev.data.set_value("Speed", 1200)
dev.data.set_value("Running", True)
dev.data.set_value("Recipe", "B-7")
for e in (node, dev):  # one MQTT connection each: born one after the other, so that NBIRTH comes first
    e.connect("127.0.0.1", port)
    while not e.is_connected():
        time.sleep(0.02)
    e.publish_birth()
    time.sleep(0.3)
for e in (dev, node):
    e.disconnect()
"""


async def test_births_of_mqtt_spb_wrapper_decode(tmp_path: Path, spb_wrapper: str) -> None:
    srv = MosquittoServer(_free_port(), tmp_path)
    await srv.start()
    host = SparkplugHost("G", {})
    kinds: list[str] = []
    try:
        async with aiomqtt.Client("127.0.0.1", srv.port) as client:
            await client.subscribe("spBv1.0/G/#")

            async def listen() -> None:
                async for m in client.messages:
                    assert isinstance(m.payload, bytes)
                    kinds.extend(i.kind for i in host.handle(m.topic.value, m.payload, now_us()).issues)

            task = asyncio.create_task(listen())
            script = tmp_path / "edge.py"
            script.write_text(EDGE)
            proc = await asyncio.to_thread(subprocess.run, [spb_wrapper, str(script), str(srv.port), "G"],
                                           capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            await wait_for(lambda: ("N1", "D1") in host.births and ("N1", None) in host.births, what="both births")
            task.cancel()
    finally:
        await srv.stop()
    node = {m.name: (m.datatype, m.value) for m in host.births[("N1", None)]}
    dev = {m.name: (m.datatype, m.value) for m in host.births[("N1", "D1")]}
    assert node["DATA/Temp"] == (pb.Double, 21.5) and node["bdSeq"][0] == pb.Int64
    assert dev["DATA/Running"] == (pb.Boolean, 1.0) and dev["DATA/Recipe"] == (pb.Text, "B-7")  # Text, not String
    assert dev["DATA/Speed"][1] == 1200.0 and dev["DATA/Speed"][0] in (pb.Int64, pb.Int32, pb.UInt64, pb.UInt32)
    assert not {"malformed", "datatype", "value"} & set(kinds)


SCADA = """
import json, sys, time
from mqtt_spb_wrapper import MqttSpbEntityScada
port, group = int(sys.argv[1]), sys.argv[2]

def show(topic, payload):
    print(json.dumps({"topic": str(topic), "payload": payload}, default=str), flush=True)

scada = MqttSpbEntityScada(group, "WrapperHost", callback_birth=show, callback_data=show, callback_death=show)
scada.connect("127.0.0.1", port)
while not scada.is_connected():
    time.sleep(0.02)
print(json.dumps({"ready": True}), flush=True)
sys.stdin.read()  # until the test closes it
scada.disconnect()
"""


class Scada:
    """mqtt-spb-wrapper's SCADA host application in its own interpreter; each message it decoded, in order."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc, self.lines, self.ready = proc, [], asyncio.Event()
        self.lines: list[dict[str, object]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = json.loads(raw)
            if line.get("ready"):
                self.ready.set()
            else:
                self.lines.append(line)

    def payloads(self, kind: str) -> list[dict[str, object]]:
        return [dict(x["payload"]) for x in self.lines if f"/{kind}/plantlink" in str(x["topic"])]  # type: ignore[call-overload]

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), 30)
        self._task.cancel()


async def test_plantlinks_edge_node_decodes_in_mqtt_spb_wrappers_host(tmp_path: Path, spb_wrapper: str) -> None:
    """plantlink publishes its tags as a Sparkplug edge node; the other implementation's host decodes the NBIRTH
    (every metric with its name, alias, datatype and engUnit property, bdSeq) and the NDATA that follow. The
    wrapper fails on a metric sent by alias only (a KeyError on its name; 3.0 allows it and it is plantlink's
    default), so the node runs with ``names_in_data``; the aliases are checked against the tag ids all the same."""
    from plantlink.model import parse_plant
    from plantlink.runtime import Runtime
    from plantlink.samples import Quality, numeric_batch, text_batch
    from tests.publish.test_sparkplug_edge import PLANT, T0_MS, T0_US, ids_of

    (tmp_path / "broker").mkdir()
    srv = MosquittoServer(_free_port(), tmp_path / "broker")
    await srv.start()
    script = tmp_path / "scada.py"
    script.write_text(SCADA)
    proc = await asyncio.create_subprocess_exec(spb_wrapper, str(script), str(srv.port), "Plant1",
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    scada = Scada(proc)
    plant = PLANT.replace("{port}", str(srv.port)).replace("node: plantlink}", "node: plantlink, names_in_data: true}")
    rt = Runtime(parse_plant(plant), tmp_path / "data", flush_interval=0.2)
    try:
        await asyncio.wait_for(scada.ready.wait(), 60)
        await rt.start()
        ids = ids_of(rt)
        await wait_for(lambda: scada.payloads("NBIRTH"), what="the wrapper decoded plantlink's NBIRTH")
        birth = scada.payloads("NBIRTH")[0]
        metrics = {str(m["name"]): m for m in birth["metrics"]}  # type: ignore[attr-defined]
        assert metrics["bdSeq"]["datatype"] == pb.Int64 and int(metrics["bdSeq"]["value"]) == 0
        prefix = "windsor/press/l1/p1/"
        alias = {int(metrics[prefix + n]["alias"]): n for n in ("temp", "strokes", "running", "recipe")}
        assert alias == {i: n for n, i in ids.items()}  # the aliases are the tag ids
        assert {n: metrics[prefix + n]["datatype"] for n in alias.values()} == {
            "temp": pb.Double, "strokes": pb.Int64, "running": pb.Boolean, "recipe": pb.String}
        assert metrics[prefix + "temp"]["properties"]["key_value"] == {"engUnit": "degC"}

        rt.ingest(numeric_batch([ids["temp"], ids["strokes"], ids["running"]], T0_US, [181.5, 42.0, 1.0],
                                Quality.GOOD))
        rt.ingest(text_batch([ids["recipe"]], T0_US + 1000, ["BRKT-4471"], Quality.GOOD))

        def decoded() -> dict[str, tuple[object, int]]:
            out: dict[str, tuple[object, int]] = {}
            for p in scada.payloads("NDATA"):
                for m in p["metrics"]:  # type: ignore[attr-defined]
                    name = alias[int(m["alias"])]
                    assert m["name"] == prefix + name
                    out[name] = (m.get("value"), int(m["timestamp"]))
            return out

        want = {"temp": (181.5, T0_MS), "strokes": (42, T0_MS), "running": (True, T0_MS),
                "recipe": ("BRKT-4471", T0_MS + 1)}
        await wait_for(lambda: decoded() == want or None, what=f"the wrapper decoded the NDATA as {want}")
        seqs = [int(p["seq"]) for p in scada.payloads("NDATA")]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        await rt.stop()
        await scada.close()
        await srv.stop()
