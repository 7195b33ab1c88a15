"""An apply hands the alarm engine the new definitions at once: a changed limit is judged with its new value,
a new alarm is evaluated, and an alarm kept (also on a tag renamed with ``was:``) keeps its state."""

from __future__ import annotations

from pathlib import Path

from plantlink.engines.alarms import isa
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services import services_of
from tests.plants import plant_yaml
from tests.waiting import wait_for

M = "s1/a1/l1/m/"
TAGS = """
- name: m
  tags:
    - {name: t, source: {device: plc, address: 0}, alarms: [{name: high, type: hi, limit: 80}]}
    - {name: u, source: {device: plc, address: 1}}
"""
BEFORE = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}", machines=TAGS)
AFTER = BEFORE.replace("{name: t, source", "{name: t2, was: t, source").replace(
    "{name: u, source: {device: plc, address: 1}}",
    "{name: u, source: {device: plc, address: 1}, alarms: [{name: uhigh, type: hi, limit: 10}]}")


def state(rt: Runtime, key: str) -> str:
    eng = rt.alarm_engine
    assert eng is not None
    return isa.STATES[eng.state[eng.by_key[key].index]]


async def test_alarm_definitions_are_live_after_an_apply(tmp_path: Path) -> None:
    rt = Runtime(parse_plant(BEFORE), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    try:
        rt.ingest(numeric_batch([rt.tag_ids[M + "t"]], now_us(), [90.0], Quality.GOOD))
        await wait_for(lambda: state(rt, M + "t:high") == isa.UNACK, 30, "t's alarm active")
        done = await services_of(rt).model.apply(Principal("erin", {"*": "engineer"}), AFTER)
        assert done.applied and done.plan.devices == ()  # the device is disabled: no connector
        assert state(rt, M + "t2:high") == isa.UNACK  # kept across the rename
        assert M + "t:high" not in rt.alarm_engine.by_key  # type: ignore[union-attr]
        assert state(rt, M + "u:uhigh") == isa.NORMAL
        rt.ingest(numeric_batch([rt.tag_ids[M + "u"]], now_us(), [20.0], Quality.GOOD))
        await wait_for(lambda: state(rt, M + "u:uhigh") == isa.UNACK, 30, "the new alarm evaluated")
    finally:
        await rt.stop()
