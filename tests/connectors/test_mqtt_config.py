"""The MQTT connector's settings in a plant model: what loads, and the located errors of what does not."""

from __future__ import annotations

import pytest

from plantlink.connectors.mqtt.plain import pointer
from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from tests.connectors.test_mqtt_connector import SPB_EXTRA, plant_text


def test_plain_and_sparkplug_points_load() -> None:
    plant = parse_plant(plant_text(1883, """
- {name: a, source: {device: broker, topic: x/a}}
- {name: b, source: {device: broker, metric: N1/D1/Speed}}
""", SPB_EXTRA))
    assert plant.devices["broker"].config.sparkplug.group == "Plant1"


@pytest.mark.parametrize(("tags", "extra", "message"), [
    ("- {name: b, source: {device: broker, metric: N1/Speed}}", "", "needs 'sparkplug"),
    ("- {name: a, source: {device: broker, topic: x/+/a}}", "", "wildcards"),
    ("- {name: a, source: {device: broker, topic: x/a, metric: N1/a}}", "", "not both"),
    ("- {name: a, source: {device: broker, topic: spBv1.0/G/NDATA/N1}}", "", "Sparkplug namespace"),
    ("- {name: a, source: {device: broker, topic: x/a, field: value}}", "", "JSON pointer"),
    ("- {name: a, source: {device: broker, topic: x/a}}\n- {name: b, source: {device: broker, topic: x/a}}", "",
     "already the source"),
])
def test_bad_points_are_located_errors(tags: str, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_plant(plant_text(1883, tags, extra))


def test_json_pointer() -> None:
    doc = {"a": {"b/c": [10, {"~d": 4}]}, "": 1}
    assert pointer(doc, "/a/b~1c/0") == 10
    assert pointer(doc, "/a/b~1c/1/~0d") == 4
    assert pointer(doc, "") is doc
    assert pointer(doc, "/a/x") is pointer(doc, "/a/b~1c/7") is pointer(doc, "/a/b~1c/0/z")  # all missing
