"""Values as people read them (plantlink.display): expected texts written out by hand."""

from __future__ import annotations

import pytest

from plantlink.display import unit_symbol, value_text


@pytest.mark.parametrize(("unit", "shown"), [("degC", "°C"), ("degF", "°F"), ("percent", "%"), ("um", "µm"),
                                             ("m3/h", "m³/h"), ("bar", "bar"), ("", ""), (" degC ", "°C")])
def test_unit_symbols(unit: str, shown: str) -> None:
    assert unit_symbol(unit) == shown


@pytest.mark.parametrize(("args", "kwargs", "shown"), [
    ((21.456, "degC", "float"), {}, "21.46 °C"),
    ((21.456, "degC", "float"), {"decimals": 1}, "21.5 °C"),
    ((1234.56, "t", "float"), {}, "1,234.6 t"),
    ((1234.56, "t", "float"), {"decimals": 0}, "1,235 t"),
    ((0.01234, "", "float"), {}, "0.0123"),
    ((12345, "", "int"), {}, "12,345"),
    ((3, "", "int"), {"texts": {3: "blocked", 4: "faulted"}}, "blocked"),
    ((9, "", "int"), {"texts": {3: "blocked"}}, "code 9"),
    ((True, "", "bool"), {}, "ON"),
    ((1.0, "", "bool"), {"texts": {0: "open", 1: "closed"}}, "closed"),
    ((None, "degC", "float"), {}, "—"),
    ((None, "degC", "float", "+inf"), {}, "— (+inf)"),
    (("RUNNING", "", "string"), {}, "RUNNING"),
])
def test_value_texts(args: tuple, kwargs: dict, shown: str) -> None:  # type: ignore[type-arg]
    assert value_text(*args, **kwargs) == shown


def test_the_demo_plant_names_its_codes_and_units() -> None:
    from plantlink.model import load_plant
    from plantlink.sim.kinds import KINDS
    from tests.hmi.harness import DEMO

    plant = load_plant(DEMO)
    kinds = {path: m.kind for path, m in plant.machines()}
    seen = set()
    for t in plant.tags:
        machine, name = t.path.rsplit("/", 1)
        if name == "state":
            assert t.tag.value_texts[1] == "running" and t.tag.value_texts[4] == "faulted", t.path
            seen.add("state")
        if name == "fault_code":  # the simulator's own fault list for that kind, word for word
            faults = getattr(KINDS[kinds[machine]], "FAULTS", {})
            assert faults and all(t.tag.value_texts.get(code) == text for code, text in faults.items()), t.path
            assert t.tag.value_texts.get(0) == "no fault", t.path
            seen.add("fault_code")
    assert seen == {"state", "fault_code"}


def test_alarm_keys_in_lists_start_at_the_line() -> None:
    from plantlink.hmi.alarms import short_path

    assert short_path("windsor/stamping/press-line-1/press1/tonnage.high") == "press-line-1/press1/tonnage.high"
    assert short_path("windsor/stamping") == "windsor/stamping"
