"""Interoperability with an independent Sparkplug B implementation: births published by ``mqtt-spb-wrapper``
(PyPI) through a real Mosquitto, decoded by plantlink's host.

Opt-in: ``mqtt-spb-wrapper`` pins protobuf 3.20 and paho-mqtt 1.6, which cannot share plantlink's environment,
so it runs in its own interpreter, named by ``PLANTLINK_SPB_WRAPPER_PYTHON``::

    python3 -m venv /tmp/spbw && /tmp/spbw/bin/pip install mqtt-spb-wrapper==2.1.2
    PLANTLINK_SPB_WRAPPER_PYTHON=/tmp/spbw/bin/python pytest tests/connectors/test_sparkplug_interop.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import SparkplugHost
from plantlink.samples import now_us
from tests.conftest import _free_port
from tests.connectors.mosquitto import MosquittoServer
from tests.waiting import wait_for

PYTHON = os.environ.get("PLANTLINK_SPB_WRAPPER_PYTHON", "")
pytestmark = pytest.mark.skipif(not PYTHON, reason="set PLANTLINK_SPB_WRAPPER_PYTHON (see the module's docstring)")

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


async def test_births_of_mqtt_spb_wrapper_decode(tmp_path: Path) -> None:
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
            proc = await asyncio.to_thread(subprocess.run, [PYTHON, str(script), str(srv.port), "G"],
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
