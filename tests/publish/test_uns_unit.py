"""The UNS publisher's pieces without a broker: the coalescing to the last value per tag, the payload, the topic,
and the plant model's ``publish:`` section (located errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.publish.coalesce import last_values
from plantlink.publish.uns import Sample, Target, payload_of, topic_of
from plantlink.samples import Quality, concat, numeric_batch, text_batch
from tests.plants import plant_yaml

T0_US = 1_795_000_000_123_456  # 2026-11-18T11:06:40.123456Z
PLANT = plant_yaml(devices="plc: {protocol: mqtt, host: 127.0.0.1, enabled: false}", machines="""
- name: p1
  tags:
    - {name: temp, unit: degC, source: {device: plc, topic: a/temp}}
    - {name: count, type: int, source: {device: plc, topic: a/count}}
    - {name: recipe, type: string, source: {device: plc, topic: a/recipe}}
""")


def test_last_value_per_tag_in_batch_order_and_only_selected() -> None:
    b = concat([numeric_batch([1, 2, 1, 3, 1], [T0_US, T0_US + 1000, T0_US + 2000, T0_US, T0_US + 3000],
                              [10.0, 20.0, 11.0, 30.0, 12.0], Quality.GOOD),
                text_batch([4, 4], [T0_US, T0_US + 5000], ["a", "b"], Quality.GOOD)])
    lv = last_values(b, np.array([1, 2, 4], dtype=np.uint32))
    assert lv.tag_id.tolist() == [1, 2, 4]
    assert lv.value[:2].tolist() == [12.0, 20.0] and np.isnan(lv.value[2])
    assert lv.text == [None, None, "b"]
    # by hand: 1_795_000_000_123_456 us = 1_795_000_000_123 ms (+3 ms for tag 1's last row)
    assert lv.ts_ms.tolist() == [1_795_000_000_126, 1_795_000_000_124, 1_795_000_000_128]
    assert lv.iso.tolist() == ["2026-11-18T11:06:40.126Z", "2026-11-18T11:06:40.124Z", "2026-11-18T11:06:40.128Z"]


def test_bad_sample_without_value_is_null_with_quality_bad() -> None:
    b = numeric_batch([7], T0_US, [0.0], Quality.BAD, missing=np.array([True]))
    lv = last_values(b, np.array([7], dtype=np.uint32))
    assert not lv.has_value[0]
    p = json.loads(payload_of(Target(7, "s/a/l/m/t", "x", "kPa", "float"),
                              Sample(int(lv.ts_ms[0]), str(lv.iso[0]), None, int(lv.quality[0]), None)))
    assert p == {"value": None, "unit": "kPa", "quality": "bad", "timestamp": "2026-11-18T11:06:40.123Z",
                 "ts_ms": 1_795_000_000_123}


@pytest.mark.parametrize(("typ", "value", "text", "expected"), [
    ("float", 1.5, None, 1.5), ("int", 42.0, None, 42), ("bool", 1.0, None, True), ("string", None, "BRKT", "BRKT"),
    ("float", float("nan"), None, None)])
def test_payload_value_by_type(typ: str, value: float | None, text: str | None, expected: object) -> None:
    p = json.loads(payload_of(Target(1, "p", "t", "", typ), Sample(1, "i", value, Quality.GOOD, text)))
    assert p["value"] == expected and p["quality"] == "good"


def test_topic_from_the_isa95_path() -> None:
    assert topic_of("", "Acme", "windsor/press/l1/p1/temp") == "Acme/windsor/press/l1/p1/temp"
    assert topic_of("uns/v1", "Acme +/#", "s/a/l/m/t") == "uns/v1/Acme ___/s/a/l/m/t"


def test_publish_section_loads() -> None:
    plant = parse_plant(PLANT + "publish:\n  mqtt: mqtt://127.0.0.1:1884\n  uns: {root: /plantlink/, qos: 0}\n"
                                "  exclude: ['*/recipe']\n")
    pub = plant.spec.publish
    assert pub is not None and (pub.host, pub.port, pub.uns.root, pub.uns.qos) == ("127.0.0.1", 1884, "plantlink", 0)
    assert [p for p in ("s1/a1/l1/p1/temp", "s1/a1/l1/p1/recipe") if pub.selects(p)] == ["s1/a1/l1/p1/temp"]


@pytest.mark.parametrize(("section", "message"), [
    ("  mqtt: http://h\n", "expected mqtt://host[:port]"),
    ("  mqtt: mqtt://h:99999\n", "port"),
    ("  mqtt: mqtt://h\n  include: ['s1/*/temp', 'nowhere/*']\n", "pattern 'nowhere/*' matches no tag"),
    ("  mqtt: mqtt://h\n  exclude: ['*']\n", "leave no tag to publish"),
    ("  mqtt: mqtt://h\n  sparkplug: {group: 'a/b'}\n", "pattern"),
    ("  mqtt: mqtt://h\n  uns: {qos: 2}\n", "qos"),
    ("  mqtt: mqtt://h\n  uns: {enabled: false}\n", "nothing would be published"),
])
def test_publish_section_errors_are_located(section: str, message: str) -> None:
    text = PLANT + "publish:\n" + section
    with pytest.raises(ConfigError) as err:
        parse_plant(text)
    shown = str(err.value)
    assert message in shown, shown
    # located in the publish section (after the plant's own lines)
    assert all(p.line is not None and p.line > PLANT.count("\n") for p in err.value.problems), shown


def test_password_from_a_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUB_PW", "hunter2-secret")
    plant = parse_plant(PLANT + "publish:\n  mqtt: mqtt://h\n  username: u\n  password: ${env:PUB_PW}\n")
    pub = plant.spec.publish
    assert pub is not None and pub.password is not None and pub.password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(pub)
    with pytest.raises(ConfigError) as err:
        parse_plant(PLANT + "publish:\n  mqtt: mqtt://h\n  password: ${env:PUB_PW}\n  keepalive: 1\n")
    assert "hunter2" not in str(err.value)
