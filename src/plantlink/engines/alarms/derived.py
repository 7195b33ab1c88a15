"""The alarms the analytics raise, as alarm definitions of the one alarm engine (not a parallel system).

A tag's ``spc:`` block with ``alarm: true`` gives one alarm per rule (key ``<tag path>:spc_<rule>``, e.g.
``.../zone1_temperature:spc_we1``, "zone1_temperature SPC: Western Electric rule 1"). Their condition is not
read from samples: the SPC engine (``engines.spc``) computes it and sets it with ``AlarmEngine.derive``; from
there on they are alarms like any other (ISA-18.2 states, acknowledge, shelve, journal, notifications).
"""

from __future__ import annotations

from typing import Any

from plantlink.analytics.names import expand
from plantlink.model.alarms import AlarmDef

#: What people call each rule.
RULE_TITLES = {**{f"we{i}": f"Western Electric rule {i}" for i in range(1, 5)},
               **{f"n{i}": f"Nelson rule {i}" for i in range(1, 9)}}

Item = tuple[str, str, str, AlarmDef, str | None]


def spc_alarm_name(rule: str) -> str:
    return f"spc_{rule}"


def derived(name: str, type_: str, priority: str, message: str, response: str = "",
            limit: float | None = None) -> AlarmDef:
    """A derived alarm definition (built, not validated: the model refuses these types under ``alarms:``)."""
    return AlarmDef.model_construct(
        name=name, type=type_, limit=limit, setpoint=None, value=None, priority=priority, deadband=0.0,
        on_delay=0.0, off_delay=0.0, latched=False, message=message, response=response, suppress_when_state=[])


def spc_alarms(plant: Any) -> list[Item]:
    out: list[Item] = []
    for t in plant.tags:
        st = t.tag.spc
        if st is None or not st.alarm:
            continue
        machine = f"{t.site}/{t.area}/{t.line}/{t.machine}"
        for rule in expand(st.rules):
            msg = f"{t.tag.name} SPC: {RULE_TITLES[rule]}"
            d = derived(spc_alarm_name(rule), "spc", st.priority, msg,
                        "Look at the control chart (SPC page) for what changed in the process")
            out.append((t.path, t.site, machine, d, None))
    return out


def derived_alarms(plant: Any) -> list[Item]:
    """Every alarm the analytics of ``plant`` may raise."""
    return spc_alarms(plant)
