"""Alarm definitions in the plant model: per-alarm checks located by the loader, cross checks per machine."""

from __future__ import annotations

import pytest

from plantlink.errors import ConfigError
from plantlink.model.alarms import machine_alarm_problems
from tests.alarms.plants import PLANT, plant

BASE = PLANT.replace("""                      - {name: open, type: discrete, latched: true, priority: medium}""",
                     """                      - {name: open, type: discrete, latched: true, priority: medium}
                      - ALARM""")

#: the line of the added alarm, counted in the text (the YAML parser has a leading newline too)
ALARM_LINE = BASE.split("\n").index("                      - ALARM") + 1


def load_with(alarm: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        plant(BASE.replace("ALARM", alarm))
    return e.value


def test_the_test_plant_is_valid_and_has_no_cross_problems() -> None:
    p = plant()
    assert all(machine_alarm_problems(m) == [] for _, m in p.machines())
    assert sum(len(t.tag.alarms) for t in p.tags) == 8


@pytest.mark.parametrize(("alarm", "message"), [
    ("{name: x, type: hi}", "a hi alarm needs a limit"),
    ("{name: x, type: hi, limit: 1, on_delay: -1s}", "expected a duration"),
    ("{name: x, type: hi, limit: 1, off_delay: -2}", "greater than or equal to 0"),
    ("{name: x, type: deviation, limit: 5}", "needs setpoint"),
    ("{name: x, type: rate, limit: 0}", "must be above 0"),
    ("{name: x, type: comm, limit: 3}", "takes no limit"),
    ("{name: x, type: discrete, suppress_when_state: [lunch]}", "suppress_when_state"),
])
def test_bad_alarm_fields_are_located(alarm: str, message: str) -> None:
    err = load_with(alarm)
    assert len(err.problems) == 1
    prob = err.problems[0]
    assert message in str(prob)
    assert prob.file == "alarm-plant.yaml" and prob.line == ALARM_LINE
    assert "oven/door" in prob.path


def test_cross_checks_name_the_alarm_and_field() -> None:
    text = PLANT.replace("{name: lo, type: lo, limit: 50", "{name: lo, type: lo, limit: 205").replace(
        "setpoint: temp_sp", "setpoint: nothing").replace("{name: hihi, type: hihi, limit: 250",
                                                          "{name: hihi, type: hihi, limit: 150")
    with pytest.raises(ConfigError) as info:
        plant(text)  # the loader runs the cross checks and locates each problem
    msg = str(info.value)
    assert "[s1/a1/l1/oven/temp alarms[0].limit] hihi limit 150.0 must be above the hi limit 200.0 on tag 'temp'" in msg
    assert "[s1/a1/l1/oven/temp alarms[1].limit] hi limit 200.0 must be above the lo limit 205.0 on tag 'temp'" in msg
    assert ("[s1/a1/l1/oven/temp alarms[3].setpoint] no tag 'nothing' on machine 'oven' "
            "(its tags: door, temp, temp_sp)") in msg
    assert len(info.value.problems) == 4  # plus hihi below lo
    oven = dict(plant(PLANT).machines())["s1/a1/l1/oven"]
    assert machine_alarm_problems(oven) == []
