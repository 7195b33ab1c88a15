"""A page opened after a model was applied shows the applied model: ``hmi()`` rebuilds its view of the plant
(and the live hub's) when the runtime's services were rebuilt (``plantlink apply``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from plantlink.hmi.data import PlantView
from plantlink.hmi.widgets import Hmi, hmi, install
from plantlink.model import parse_plant
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues
from tests.plants import plant_yaml

TAGS = """
- name: m
  tags:
    - {name: t, source: {device: plc, address: 0}}
"""
BEFORE = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1}", machines=TAGS)
AFTER = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1}",
                   machines=TAGS + "    - {name: u, source: {device: plc, address: 1}}\n")


def services(text: str, latest: LatestValues) -> Services:
    plant = parse_plant(text)
    ids = {t.path: i + 1 for i, t in enumerate(plant.all_tags)}
    none: Any = lambda: None  # noqa: E731
    return Services.build(plant, ids, latest, Components(none, none, none, none, none, none, none, none))


def test_a_page_after_an_apply_sees_the_applied_model() -> None:
    latest = LatestValues()
    running = [services(BEFORE, latest)]
    hub: Any = SimpleNamespace(view=PlantView(running[0]))
    install(Hmi(running[0], hub.view, hub, "/hmi"), source=lambda: running[0])
    try:
        assert set(hmi().view.tags) == {"s1/a1/l1/m/t"}
        same = hmi()
        assert hmi() is same  # nothing applied: nothing rebuilt
        running[0] = services(AFTER, latest)  # what an apply does to the runtime's services
        h = hmi()
        assert h.services is running[0] and set(h.view.tags) == {"s1/a1/l1/m/t", "s1/a1/l1/m/u"}
        assert hub.view is h.view  # the live hub follows
    finally:
        install(Hmi(running[0], hub.view, hub, "/hmi"))
