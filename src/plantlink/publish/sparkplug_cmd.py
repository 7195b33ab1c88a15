"""The write commands of an NCMD (or DCMD) to plantlink's Sparkplug edge node, as ``Command``s for the gate
(``plantlink.publish.commands``).

plantlink's edge node publishes every tag as a node metric (name: the tag's path, alias: its id), so a write is
an NCMD naming the metric by name or alias, with a value in the field of its datatype (the birth's when the
command gives none). ``Node Control/Rebirth`` is not a write (the edge node answers it); plantlink's node has
no devices, so every metric of a DCMD names no tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug import values as dt
from plantlink.connectors.mqtt.sparkplug.host import BDSEQ_METRIC, REBIRTH_METRIC
from plantlink.publish.base import Target
from plantlink.publish.commands import Command

_NOT_WRITES = frozenset({REBIRTH_METRIC, BDSEQ_METRIC})
#: The datatype of each tag type's metric (as born).
DATATYPES: dict[str, int] = {"float": pb.Double, "int": pb.Int64, "bool": pb.Boolean, "string": pb.String}


def metric_commands(topic: str, msg: pb.Payload, targets: Mapping[int, Target], device: bool) -> list[Command]:
    """One ``Command`` per metric of ``msg`` that is not a node control."""
    by_name = {t.path: t for t in targets.values()}
    out: list[Command] = []
    for m in msg.metrics:
        if m.name in _NOT_WRITES:
            continue
        label = m.name or (f"alias {m.alias}" if m.HasField("alias") else "a metric without name or alias")
        target = None if device else (by_name.get(m.name) if m.name else targets.get(m.alias)
                                      if m.HasField("alias") else None)
        if m.name and m.HasField("alias") and target is not None and target.tag_id != m.alias:
            out.append(Command("sparkplug", topic, target.path, problem=f"metric {m.name!r} has alias "
                                                                         f"{target.tag_id}, not {m.alias}"))
            continue
        if target is None:
            why = "plantlink's edge node has no devices: write its node metrics with an NCMD" if device else \
                f"{label} is not a metric of this node"
            out.append(Command("sparkplug", topic, None, problem=why, problem_reason="unknown_tag"))
            continue
        value, problem = _value(m, target)
        out.append(Command("sparkplug", topic, target.path, value, problem=problem))
    return out


def _value(m: pb.Payload.Metric, target: Target) -> tuple[Any, str | None]:
    """The metric's value as the tag's type takes it (bool, int, float or str), or why it cannot be one."""
    if m.is_null:
        return None, f"metric {target.path!r}: a null value is not a write"
    datatype = m.datatype if m.HasField("datatype") and m.datatype else DATATYPES[target.type]
    try:
        raw = dt.value_of(m, datatype)
    except ValueError as exc:
        return None, f"metric {target.path!r}: {exc}"
    if target.type == "bool":
        if datatype != pb.Boolean or not isinstance(raw, float):
            return None, f"metric {target.path!r} is a Boolean, not {dt.name_of(datatype)}"
        return raw != 0.0, None
    if target.type == "string":
        return (raw, None) if isinstance(raw, str) else (None, f"metric {target.path!r} is a String")
    if not isinstance(raw, float) or datatype in (pb.Boolean, pb.DateTime):
        return None, f"metric {target.path!r} is a number, not {dt.name_of(datatype)}"
    if datatype not in dt.FLOATS:
        return int(raw), None
    return raw, None
