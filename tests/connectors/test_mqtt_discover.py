"""``plantlink discover --mqtt``: births as ready-to-paste YAML, from a live edge node that is asked to rebirth."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as paho
import yaml

from plantlink.connectors.mqtt.discover import broker_address, to_yaml
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug.host import MetricInfo
from plantlink.model import parse_plant
from tests.conftest import _free_port
from tests.connectors.mosquitto import MosquittoServer, mosquitto
from tests.connectors.pki import KEY_PASSWORD
from tests.connectors.test_mqtt_connector import SPB_EXTRA, G, plant_text, spb

BIRTHS = {
    ("N1", None): [MetricInfo("bdSeq", None, pb.Int64, {}, 0.0),
                   MetricInfo("Node Control/Rebirth", 1, pb.Boolean, {}, 0.0),
                   MetricInfo("Inputs/Temp", 2, pb.Double, {"engUnit": "degC"}, 20.0)],
    ("N1", "D1"): [MetricInfo("Speed", 3, pb.UInt32, {}, 5.0), MetricInfo("Table", 4, pb.DataSet, {}, None),
                   MetricInfo("Running", 5, pb.Boolean, {}, 1.0), MetricInfo("Recipe", 6, pb.String, {}, "A")],
}


def test_to_yaml_pastes_into_a_plant_model() -> None:
    text = to_yaml(BIRTHS, "broker", G, "s/a/l")
    doc = yaml.safe_load(text)
    assert [m["name"] for m in doc["machines"]] == ["N1", "N1-D1"]
    assert doc["machines"][0]["tags"] == [{"name": "Inputs.Temp", "unit": "degC",
                                           "source": {"device": "broker", "metric": "N1/Inputs/Temp"}}]
    assert doc["machines"][1]["tags"] == [
        {"name": "Speed", "type": "int", "source": {"device": "broker", "metric": "N1/D1/Speed"}},
        {"name": "Running", "type": "bool", "source": {"device": "broker", "metric": "N1/D1/Running"}},
        {"name": "Recipe", "type": "string", "source": {"device": "broker", "metric": "N1/D1/Recipe"}}]
    assert "# Table: datatype DataSet is not a tag value" in text
    # the tags load as a plant model's (each machine's list pasted into the test plant)
    tags = "\n".join("- " + yaml.safe_dump(t, default_flow_style=True).strip()
                     for m in doc["machines"] for t in m["tags"] if t["name"] != "Recipe")
    assert len(parse_plant(plant_text(1883, tags, SPB_EXTRA)).tags) == 3


def test_broker_address() -> None:
    assert broker_address("mqtt://10.0.0.5:1884") == ("10.0.0.5", 1884)
    assert broker_address("broker.local") == ("broker.local", 1883)
    assert broker_address("mqtts://broker.local") == ("broker.local", 8883)


def discover_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plantlink.cli", "discover", "--group", G, "--wait", "1",
                           "--no-rebirth", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


async def test_discover_over_tls_with_a_client_certificate(tmp_path: Path) -> None:
    """A broker that wants client certificates: the birth (retained here, so that it is there when discover
    subscribes) is listed with the CA, the certificate and the key; without the certificate, the error says so."""
    async with mosquitto(tmp_path / "broker", tls=True, require_certificate=True) as srv:
        assert srv.pki is not None
        await srv.publish(f"spBv1.0/{G}/NBIRTH/N1", spb(0, [{"name": "Temp", "alias": 1, "datatype": pb.Float,
                                                               "float_value": 1.5}]), retain=True)
        url, p = f"mqtts://127.0.0.1:{srv.tls_port}", srv.pki
        ok = await asyncio.to_thread(discover_cli, "--mqtt", url, "--ca-file", str(p.ca), "--cert-file",
                                     str(p.client_cert), "--key-file", str(p.client_key))
        refused = await asyncio.to_thread(discover_cli, "--mqtt", url, "--ca-file", str(p.ca))
        encrypted = ("--mqtt", url, "--ca-file", str(p.ca), "--cert-file", str(p.client_cert), "--key-file",
                     str(p.client_key_encrypted))
        with_password = await asyncio.to_thread(discover_cli, *encrypted,
                                                env={"PLANTLINK_TLS_KEY_PASSWORD": KEY_PASSWORD})
        other_var = await asyncio.to_thread(discover_cli, *encrypted, "--key-password-env", "PRESS_KEY",
                                            env={"PRESS_KEY": KEY_PASSWORD})
        no_password = await asyncio.to_thread(discover_cli, *encrypted, env={"PLANTLINK_TLS_KEY_PASSWORD": ""})
    assert with_password.returncode == 0 and other_var.returncode == 0, with_password.stderr + other_var.stderr
    assert with_password.stdout == other_var.stdout == ok.stdout
    assert no_password.returncode == 1 and "key" in no_password.stderr, no_password.stderr
    assert KEY_PASSWORD not in with_password.stderr + no_password.stderr
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(ok.stdout)["machines"][0]["tags"] == [
        {"name": "Temp", "source": {"device": "broker", "metric": "N1/Temp"}}]
    assert refused.returncode == 1 and "certificate required" in refused.stderr
    assert "tls.cert_file" in refused.stderr
    plain = discover_cli("--mqtt", "mqtt://127.0.0.1:1", "--ca-file", str(tmp_path / "ca.pem"))
    assert plain.returncode == 1 and "--ca-file is for TLS: write the broker as mqtts://" in plain.stderr


async def test_discover_cli_asks_a_running_node_to_rebirth(tmp_path: Path) -> None:
    srv = MosquittoServer(_free_port(), tmp_path)
    await srv.start()
    stop = threading.Event()
    edge = paho.Client(paho.CallbackAPIVersion.VERSION2)

    def on_ncmd(_c: object, _u: object, m: paho.MQTTMessage) -> None:  # a rebirth request: births again
        edge.publish(f"spBv1.0/{G}/NBIRTH/N1", spb(0, [{"name": "bdSeq", "datatype": pb.Int64, "long_value": 1},
                                                        {"name": "Temp", "alias": 1, "datatype": pb.Float,
                                                         "float_value": 1.5}]))
        edge.publish(f"spBv1.0/{G}/DBIRTH/N1/D1", spb(1, [{"name": "Count", "alias": 2, "datatype": pb.Int16,
                                                           "int_value": 7}]))

    edge.on_message = on_ncmd
    edge.connect("127.0.0.1", srv.port)
    edge.subscribe(f"spBv1.0/{G}/NCMD/N1", qos=1)
    edge.loop_start()

    def data() -> None:  # a node that was born before discover listened: only data until asked
        seq = 1
        while not stop.wait(0.05):
            seq = (seq + 1) % 256
            edge.publish(f"spBv1.0/{G}/NDATA/N1", spb(seq, [{"alias": 1, "float_value": 2.0}]))

    feeder = threading.Thread(target=data)
    feeder.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "plantlink.cli", "discover", "--mqtt",
                               f"mqtt://127.0.0.1:{srv.port}", "--group", G, "--wait", "3", "--under", "s/a/l"],
                              capture_output=True, text=True, timeout=60)
    finally:
        stop.set()
        feeder.join()
        edge.disconnect()
        edge.loop_stop()
        await srv.stop()
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert doc["machines"][0]["tags"] == [{"name": "Temp", "source": {"device": "broker", "metric": "N1/Temp"}}]
    assert doc["machines"][1]["tags"] == [{"name": "Count", "type": "int",
                                           "source": {"device": "broker", "metric": "N1/D1/Count"}}]
    assert "2 birth(s), 3 metric(s)" in proc.stderr


def test_discover_names_an_unreachable_broker() -> None:
    proc = subprocess.run([sys.executable, "-m", "plantlink.cli", "discover", "--mqtt", f"mqtt://127.0.0.1:{_free_port()}",
                           "--group", G, "--wait", "0.1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "error" in proc.stderr and "127.0.0.1" in proc.stderr
