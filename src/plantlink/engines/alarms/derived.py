"""The alarms the analytics raise, as alarm definitions of the one alarm engine (not a parallel system).

A tag's ``spc:`` block with ``alarm: true`` gives one alarm per rule (key ``<tag path>:spc_<rule>``, e.g.
``.../zone1_temperature:spc_we1``, "zone1_temperature SPC: Western Electric rule 1"); a machine's
``anomaly:`` block in mode ``alarm`` one (``<machine>/anomaly_score:anomaly``), its ``rul:`` block one
(``<machine>/rul_hours:rul_low``). Their condition is not
read from samples: the SPC engine (``engines.spc``) computes it and sets it with ``AlarmEngine.derive``; from
there on they are alarms like any other (ISA-18.2 states, acknowledge, shelve, journal, notifications).
"""

from __future__ import annotations

from typing import Any

from plantlink.model.alarms import AlarmDef

#: What people call each rule.
RULE_TITLES = {**{f"we{i}": f"Western Electric rule {i}" for i in range(1, 5)},
               **{f"n{i}": f"Nelson rule {i}" for i in range(1, 9)}}

Item = tuple[str, str, str, AlarmDef, str | None]


def spc_alarm_name(rule: str) -> str:
    return f"spc_{rule}"


def derived(name: str, type_: str, priority: str, message: str, response: str = "",
            limit: float | None = None, suppress: list[str] | None = None) -> AlarmDef:
    """A derived alarm definition (built, not validated: the model refuses these types under ``alarms:``)."""
    return AlarmDef.model_construct(
        name=name, type=type_, limit=limit, setpoint=None, value=None, priority=priority, deadband=0.0,
        on_delay=0.0, off_delay=0.0, latched=False, message=message, response=response,
        suppress_when_state=list(suppress or []))


def spc_alarms(plant: Any) -> list[Item]:
    out: list[Item] = []
    for t in plant.tags:
        st = t.tag.spc
        if st is None or not st.alarm_rules:
            continue
        machine = f"{t.site}/{t.area}/{t.line}/{t.machine}"
        for rule in st.alarm_rules:
            msg = f"{t.tag.name} SPC: {RULE_TITLES[rule]}"
            d = derived(spc_alarm_name(rule), "spc", st.priority, msg,
                        "Look at the control chart (SPC page) for what changed in the process",
                        suppress=list(st.suppress_when_state))
            out.append((t.path, t.site, machine, d, None))
    return out


#: The alarm names of a machine's anomaly detector (on ``<machine>/anomaly_score``) and of its RUL (on
#: ``<machine>/rul_hours``).
ANOMALY_ALARM, RUL_ALARM = "anomaly", "rul_low"


def machine_alarms(plant: Any) -> list[Item]:
    """A machine's anomaly alarm (only in mode ``alarm``: in ``shadow`` nothing can alarm) and RUL alarm."""
    from plantlink.model.analytics import RUL_TAG, SCORE_TAG

    out: list[Item] = []
    for path, m in plant.machines():
        site = path.split("/", 1)[0]
        a = m.anomaly
        if a is not None and a.mode == "alarm":
            d = derived(ANOMALY_ALARM, "anomaly", a.priority, f"{m.name}: anomaly score above its limit",
                        "Compare the machine's tags with their usual values (trend the anomaly score)", a.limit)
            out.append((f"{path}/{SCORE_TAG}", site, path, d, None))
        r = m.rul
        if r is not None:
            d = derived(RUL_ALARM, "rul", r.priority,
                        f"{m.name}: remaining useful life below {r.threshold_hours:g} h",
                        "Plan the part's replacement", r.threshold_hours)
            out.append((f"{path}/{RUL_TAG}", site, path, d, None))
    return out


#: The alarm of an expected edge whose store-and-forward queue is over its ``alarm_at`` (``plantlink.edge``).
EDGE_QUEUE_ALARM = "queue_nearly_full"


def edge_alarm_key(site: str, edge: str) -> str:
    """The key of an edge's queue alarm: under the plant's first site, ``<site>/_edges/<edge>/queue_fill``."""
    return f"{site}/_edges/{edge}/queue_fill:{EDGE_QUEUE_ALARM}"


def edge_alarms(plant: Any) -> list[Item]:
    """A central's (``edges:``) alarm per expected edge: its queue nearly full, as the edge's status says."""
    edges = plant.spec.edges
    if edges is None or not plant.sites:
        return []
    site = plant.sites[0].name
    out: list[Item] = []
    for name in edges.expected:
        d = derived(EDGE_QUEUE_ALARM, "edge", "high", f"edge {name}: store-and-forward queue nearly full",
                    "Restore the edge's link to the central (or the central): when its queue is full the edge "
                    "drops its oldest data or stops reading, as configured")
        key = edge_alarm_key(site, name)
        out.append((key.split(":", 1)[0], site, f"{site}/_edges/{name}", d, None))
    return out


def derived_alarms(plant: Any) -> list[Item]:
    """Every alarm the analytics of ``plant`` (and a central's edges) may raise."""
    return spc_alarms(plant) + machine_alarms(plant) + edge_alarms(plant)
