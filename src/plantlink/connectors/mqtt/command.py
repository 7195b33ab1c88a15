"""Writes to MQTT devices as pure functions: the message of a write to a plain-topic tag, and the Sparkplug B
NCMD (a node's metric) or DCMD (a device's metric) of a write to a Sparkplug-sourced tag.

A Sparkplug command names the metric as its birth did (name, and alias when the birth gave one), with the
birth's datatype, a timestamp, and the value in the field the datatype uses (spec 3.0, 6.4.16; signed integers
as two's complement in the unsigned fields). A value the datatype cannot carry (300 for a UInt8, 2.5 for an
Int32, text for a Double) is refused, never rounded or cut. The control path (``ControlService``) is the only
caller: it has checked the rights, limits and interlocks before a command is built.
"""

from __future__ import annotations

import json
import math
from typing import Any

from plantlink.connectors.mqtt.config import MqttPoint
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.connectors.mqtt.sparkplug import values as dt
from plantlink.connectors.mqtt.sparkplug.host import NAMESPACE, SparkplugHost

#: Signed and unsigned integer datatypes by (bits, signed).
_UNSIGNED_BITS: dict[int, int] = {int(pb.UInt8): 8, int(pb.UInt16): 16, int(pb.UInt32): 32, int(pb.UInt64): 64}


def plain_payload(point: MqttPoint, tag_type: str, value: Any) -> bytes:
    """``{"value": v}`` for a ``json`` point; the value as text for a ``raw`` one (``true``/``false``)."""
    if point.payload == "json":
        return json.dumps({"value": value}, separators=(",", ":")).encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if tag_type == "int" and isinstance(value, int | float):
        return str(int(value)).encode()
    return str(value).encode()


def sparkplug_command(host: SparkplugHost, key: str, value: Any, now_ms: int) -> tuple[str, bytes]:
    """(topic, payload) of the NCMD/DCMD writing ``value`` to metric ``key`` (``node/metric`` or
    ``node/device/metric``) as its last birth announced it (ValueError when it did not, or the value does not
    fit the birth's datatype)."""
    node_id, device, name = split_key(host, key)
    node = host.nodes.get(node_id)
    if node is None or not node.online:
        raise ValueError(f"Sparkplug node {node_id!r} is not born (no NBIRTH seen, or dead): cannot command it")
    scope = node.scope if device is None else node.devices.get(device)
    if scope is None or not scope.online:
        raise ValueError(f"Sparkplug device {node_id}/{device} is not born (no DBIRTH seen, or dead)")
    datatype = scope.datatypes.get(name)
    if datatype is None:
        raise ValueError(f"metric {name!r} is in no birth of {node_id}{'' if device is None else '/' + device}")
    alias = next((a for a, (n, _) in scope.aliases.items() if n == name), None)
    msg = pb.Payload(timestamp=now_ms)
    m = msg.metrics.add(name=name, datatype=datatype, timestamp=now_ms)
    if alias is not None:
        m.alias = alias
    set_value(m, datatype, value)
    kind = "NCMD" if device is None else "DCMD"
    tail = node_id if device is None else f"{node_id}/{device}"
    data: bytes = msg.SerializeToString()
    return f"{NAMESPACE}/{host.group}/{kind}/{tail}", data


def split_key(host: SparkplugHost, key: str) -> tuple[str, str | None, str]:
    """(node, device or None, metric name) of a binding key. A metric name may hold '/' (``Node Control/...``):
    the device is the second part only when the node has that device in a birth, or the key has 3+ parts and
    the node has no such node metric."""
    node_id, _, rest = key.partition("/")
    node = host.nodes.get(node_id)
    first, sep, tail = rest.partition("/")
    if sep and node is not None and first in node.devices and rest not in node.scope.datatypes:
        return node_id, first, tail
    if sep and node is not None and rest in node.scope.datatypes:
        return node_id, None, rest
    return (node_id, first, tail) if sep else (node_id, None, rest)


def set_value(m: pb.Payload.Metric, datatype: int, value: Any) -> None:
    """Put ``value`` in the field ``datatype`` uses (ValueError when it does not fit)."""
    where = dt.name_of(datatype)
    if datatype == pb.Boolean:
        if not isinstance(value, bool):
            raise ValueError(f"a {where} metric takes true/false, not {value!r:.40}")
        m.boolean_value = value
    elif datatype in dt.TEXTS:
        if not isinstance(value, str):
            raise ValueError(f"a {where} metric takes text, not {value!r:.40}")
        m.string_value = value
    elif datatype in dt.FLOATS:
        number = _number(value, where)
        if datatype == pb.Float:
            m.float_value = number
        else:
            m.double_value = number
    elif datatype in dt.SIGNED_BITS or datatype in _UNSIGNED_BITS or datatype == pb.DateTime:
        _set_int(m, datatype, value, where)
    else:
        raise ValueError(f"datatype {where} cannot be written by plantlink")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a {where} metric takes a finite number, not {value!r:.40}")
    return float(value)


def _set_int(m: pb.Payload.Metric, datatype: int, value: Any, where: str) -> None:
    if isinstance(value, bool):  # a bool tag written to an integer metric: 0/1, as it reads it
        value = int(value)
    number = _number(value, where)
    if not number.is_integer():
        raise ValueError(f"a {where} metric takes a whole number, not {value!r}")
    n = int(value)
    signed = dt.SIGNED_BITS.get(datatype)
    bits = signed if signed is not None else _UNSIGNED_BITS.get(datatype, 64)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed is not None else (0, (1 << bits) - 1)
    if not low <= n <= high:
        raise ValueError(f"{n} does not fit a {where} metric ({low}..{high})")
    if bits <= 32:
        m.int_value = n & 0xFFFF_FFFF
    else:
        m.long_value = n & 0xFFFF_FFFF_FFFF_FFFF
