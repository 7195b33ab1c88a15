"""Plant-load checks of the ``control:`` settings, located at file:line the way the loader reports them."""

from __future__ import annotations

import pytest

from plantlink.control.check import control_problems
from plantlink.errors import ConfigError
from plantlink.model import parse_plant
from plantlink.model.loader import human_path
from plantlink.model.schema import PlantFile
from plantlink.model.yamlmarks import load_marked

PLANT = """\
enterprise: T
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: 1502}
sites:
  - name: s
    timezone: UTC
    areas:
      - name: a
        lines:
          - name: l
            machines:
              - name: m1
                tags:
                  - {name: state, type: int, source: {device: plc, table: input, address: 0}}
                  - {name: mode, type: string, source: {device: plc, table: input, address: 1, type: string, length: 2}}
                  - name: sp
                    writable: true
                    source: {device: plc, table: holding, address: 10}
                    control:
                      min: 0
                      max: 100
                      allowed: [10, "x", 200]
                      interlocks:
                        - state == 1
                        - m2.run == true and nope > 1
              - name: m2
                tags:
                  - {name: run, type: bool, source: {device: plc, table: coil, address: 0}}
                  - name: cmd
                    type: bool
                    source: {device: plc, table: coil, address: 1}
                    control: {min: 1, allowed: [1]}
                  - name: count
                    type: int
                    writable: true
                    source: {device: plc, table: holding, address: 20}
                    control: {max_step: 2.5, interlocks: ['tag("s/a/l/m1/mode") == 3']}
"""


def located(text: str) -> list[str]:
    """What the loader's hook reports: ``line: [where] message`` for each problem."""
    doc = load_marked(text, "plant.yaml")
    spec = PlantFile.model_validate(doc.data)
    return [f"{doc.mark(loc)[0]}: [{human_path(doc.data, loc)}] {msg}" for loc, msg in control_problems(spec)]


def test_every_problem_is_found_and_located() -> None:
    got = located(PLANT)
    assert got == [
        "22: [s/a/l/m1/sp control.allowed[1]] allowed value 'x' is not a number (the tag is float)",
        "22: [s/a/l/m1/sp control.allowed[2]] allowed value 200.0 is outside min..max (0.0..100.0)",
        "25: [s/a/l/m1/sp control.interlocks[1]] interlock 'm2.run == true and nope > 1': unknown tag 'nope' "
        "(resolves to 's/a/l/m1/nope') (at position 20)",
        "32: [s/a/l/m2/cmd control] control settings on a tag that is not writable (add writable: true, or "
        "remove control)",
        "32: [s/a/l/m2/cmd control.min] min does not apply to a bool tag",
        "32: [s/a/l/m2/cmd control.allowed[0]] allowed value 1.0 is not true/false (the tag is bool)",
        "37: [s/a/l/m2/count control.max_step] max_step must be a whole number for an int tag, got 2.5",
        "37: [s/a/l/m2/count control.interlocks[0]] interlock 'tag(\"s/a/l/m1/mode\") == 3': cannot compare a "
        "string with a number (at position 22)",
    ]


def test_syntax_errors_and_reversed_limits_are_reported_by_the_plant_loader_itself() -> None:
    with pytest.raises(ConfigError) as err:
        parse_plant(PLANT.replace("- state == 1", "- state = = 1"), "plant.yaml")
    assert [str(p) for p in err.value.problems] == [
        "plant.yaml:24:27: [s/a/l/m1/sp control.interlocks[0]] interlock 'state = = 1': unexpected character '=': "
        "use == to compare (at position 7)"]
    with pytest.raises(ConfigError) as err:
        parse_plant(PLANT.replace("min: 0\n", "min: 500\n"), "plant.yaml")
    assert [str(p) for p in err.value.problems] == [
        "plant.yaml:20:23: [s/a/l/m1/sp control] min (500.0) is greater than max (100.0)"]


def test_the_demo_plant_is_clean() -> None:
    from pathlib import Path

    from plantlink.model import load_plant
    plant = load_plant(Path(__file__).parents[2] / "examples" / "demo-plant.yaml")
    assert control_problems(plant.spec) == []
