"""The MQTT connector over TLS against a real Mosquitto with a TLS listener (certificates made at test time,
tests/connectors/pki.py): a plain topic read over mqtts with the CA; a wrong CA, said in the device's health while
the other devices run on; client-certificate authentication (require_certificate) with an encrypted key whose
password never shows; ``verify: false`` warned at start."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from plantlink.connectors.base import DeviceState
from plantlink.model import parse_plant
from plantlink.model.lint import model_warnings
from plantlink.runtime import Runtime
from plantlink.samples import Quality
from plantlink.testing.connector import Collector
from tests.connectors.mosquitto import MosquittoServer, mosquitto
from tests.connectors.pki import KEY_PASSWORD, Pki
from tests.connectors.test_mqtt_connector import connector, plant_text
from tests.plants import plant_yaml
from tests.waiting import wait_for

TAGS = "- {name: temp, source: {device: broker, topic: plant/l/temp}}"
RETAINED = {"plant/l/temp": b'{"value": 20.5}'}


@pytest_asyncio.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    async with mosquitto(tmp_path / "broker", retained=RETAINED, tls=True) as srv:
        yield srv


@pytest_asyncio.fixture
async def cert_broker(tmp_path: Path) -> AsyncIterator[MosquittoServer]:
    """A TLS listener that wants a client certificate signed by the test CA."""
    async with mosquitto(tmp_path / "broker", retained=RETAINED, tls=True, require_certificate=True) as srv:
        yield srv


def pki(srv: MosquittoServer) -> Pki:
    assert srv.pki is not None
    return srv.pki


async def read_temp(srv: MosquittoServer, tls: str) -> Any:
    """A connector on the TLS port with ``tls`` (YAML flow mapping): connected and the retained value read, or
    its health after it failed."""
    sink = Collector()
    conn = connector(plant_text(srv.tls_port or 0, TAGS, f"    tls: {tls}"), sink)
    await conn.start()
    try:
        def good() -> bool:
            return sink.latest().get(1, (None, None))[1] == Quality.GOOD

        await wait_for(lambda: good() or conn.health.last_error is not None, what="a value or an error")
        h = conn.health  # as it is now, before the stop
        return sink.latest()[1] if good() else SimpleNamespace(ok=h.ok, state=h.state, last_error=h.last_error)
    finally:
        await conn.stop()


async def test_a_plain_topic_is_read_over_mqtts_with_the_ca(broker: MosquittoServer) -> None:
    assert await read_temp(broker, f"{{ca_file: {pki(broker).ca}}}") == (20.5, Quality.GOOD)
    # the name checked may differ from the host connected to: the server's certificate names localhost
    assert await read_temp(broker, f"{{ca_file: {pki(broker).ca}, server_name: localhost}}") == (20.5, Quality.GOOD)


async def test_a_wrong_ca_or_name_is_said_in_the_health(broker: MosquittoServer) -> None:
    health = await read_temp(broker, f"{{ca_file: {pki(broker).other_ca}}}")
    assert health.state in (DeviceState.DOWN, DeviceState.RECONNECTING)
    assert "certificate verify failed" in health.last_error and "tls.ca_file" in health.last_error
    health = await read_temp(broker, f"{{ca_file: {pki(broker).ca}, server_name: broker.example}}")
    assert "certificate verify failed" in health.last_error and "broker.example" in health.last_error


def two_devices(srv: MosquittoServer, good_ca: Path, bad_ca: Path) -> str:
    return plant_yaml(
        devices=f"""
        good: {{protocol: mqtt, host: 127.0.0.1, port: {srv.tls_port}, tls: {{ca_file: {good_ca}}},
                reconnect_min: 100ms, reconnect_max: 400ms, timeout: 2s}}
        bad: {{protocol: mqtt, host: 127.0.0.1, port: {srv.tls_port}, tls: {{ca_file: {bad_ca}}},
               reconnect_min: 100ms, reconnect_max: 400ms, timeout: 2s}}
        """,
        machines="""
        - name: m
          tags:
            - {name: temp, source: {device: good, topic: plant/l/temp}}
            - {name: other, source: {device: bad, topic: plant/l/temp}}
        """)


async def test_a_device_with_the_wrong_ca_fails_alone(broker: MosquittoServer, tmp_path: Path) -> None:
    rt = Runtime(parse_plant(two_devices(broker, pki(broker).ca, pki(broker).other_ca)), tmp_path / "data",
                 flush_interval=0.2)
    await rt.start()
    try:
        temp = rt.tag_ids["s1/a1/l1/m/temp"]

        def stored() -> Any:
            assert rt.historian is not None
            return rt.historian.latest([temp]).to_pylist()[0]["value"]

        await wait_for(lambda: stored() == 20.5, what="the good device's value stored")
        bad = rt.connectors["bad"].health
        await wait_for(lambda: bad.last_error is not None, what="the bad device's error")
        assert not bad.ok and "certificate verify failed" in (bad.last_error or "")
        assert rt.connectors["good"].health.state == DeviceState.CONNECTED
        await broker.publish("plant/l/temp", b'{"value": 22}')
        await wait_for(lambda: stored() == 22.0, what="the next value")
    finally:
        await rt.stop()


async def test_a_client_certificate_is_accepted_and_needed(cert_broker: MosquittoServer,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    p = pki(cert_broker)
    monkeypatch.setenv("PL_TEST_KEY_PASSWORD", KEY_PASSWORD)
    caplog.set_level(logging.DEBUG)
    assert await read_temp(cert_broker, f"{{ca_file: {p.ca}, cert_file: {p.client_cert}, "
                                        f"key_file: {p.client_key}}}") == (20.5, Quality.GOOD)
    assert await read_temp(cert_broker, f"{{ca_file: {p.ca}, cert_file: {p.client_cert}, key_file: "
                                        f"{p.client_key_encrypted}, key_password: '${{env:PL_TEST_KEY_PASSWORD}}'}}"
                           ) == (20.5, Quality.GOOD)
    refused = await read_temp(cert_broker, f"{{ca_file: {p.ca}}}")
    assert not refused.ok and "certificate required" in refused.last_error
    assert "give tls.cert_file and tls.key_file" in refused.last_error
    stranger = await read_temp(cert_broker, f"{{ca_file: {p.ca}, cert_file: {p.stranger_cert}, "
                                            f"key_file: {p.stranger_key}}}")
    assert not stranger.ok and "unknown ca" in stranger.last_error and "tls.cert_file" in stranger.last_error
    assert KEY_PASSWORD not in caplog.text


async def test_verify_false_connects_and_is_warned(broker: MosquittoServer, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="plantlink.tls")
    assert await read_temp(broker, "{verify: false}") == (20.5, Quality.GOOD)
    assert "mqtt device broker: TLS without certificate verification" in caplog.text
    f = tmp_path / "plant.yaml"
    text = plant_text(broker.tls_port or 0, TAGS, "    tls: {verify: false}")
    f.write_text(text, encoding="utf-8")
    [warning] = model_warnings(parse_plant(text, str(f)))
    line = text.splitlines().index("    tls: {verify: false}") + 1
    assert (warning.line, warning.path) == (line, "device broker tls") and "not checked" in warning.message
