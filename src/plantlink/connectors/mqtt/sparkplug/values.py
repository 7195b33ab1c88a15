"""Sparkplug B datatypes (spec 3.0, 6.4.16): which metric value field carries which datatype, and how a value
becomes a sample's number or text. Signed integers travel in unsigned protobuf fields as two's complement (an
Int8 of -1 may arrive as 255 or as 4294967295): they are sign-extended from their own width."""

from __future__ import annotations

from typing import Any

from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb

#: The DataType enum's names by code (1..34; 0 is "Unknown", a placeholder a metric must not use).
NAMES: dict[int, str] = {v.number: v.name for v in pb.DataType.DESCRIPTOR.values}
SIGNED_BITS: dict[int, int] = {int(pb.Int8): 8, int(pb.Int16): 16, int(pb.Int32): 32, int(pb.Int64): 64}
UNSIGNED: frozenset[int] = frozenset({int(pb.UInt8), int(pb.UInt16), int(pb.UInt32), int(pb.UInt64)})
FLOATS: frozenset[int] = frozenset({int(pb.Float), int(pb.Double)})
TEXTS: frozenset[int] = frozenset({int(pb.String), int(pb.Text), int(pb.UUID)})
#: Datatypes a tag can take a value from (a number, a boolean, a text, a DateTime as milliseconds).
SUPPORTED: frozenset[int] = frozenset({*SIGNED_BITS, *UNSIGNED, *FLOATS, *TEXTS, int(pb.Boolean), int(pb.DateTime)})

_INT_FIELDS = ("int_value", "long_value")
#: The value fields each supported datatype may use.
FIELDS: dict[int, tuple[str, ...]] = {
    **dict.fromkeys((*SIGNED_BITS, *UNSIGNED), _INT_FIELDS),
    **dict.fromkeys(FLOATS, ("float_value", "double_value")),
    **dict.fromkeys(TEXTS, ("string_value",)),
    int(pb.Boolean): ("boolean_value",),
    int(pb.DateTime): ("long_value",),
}


def known(datatype: int) -> bool:
    """A datatype the 3.0 specification defines (1..34)."""
    return datatype != pb.Unknown and datatype in NAMES


def name_of(datatype: int) -> str:
    return NAMES.get(datatype, f"#{datatype}") if datatype != pb.Unknown else "Unknown"


def value_of(metric: pb.Payload.Metric, datatype: int) -> float | str | None:
    """The metric's value as a float (numbers, booleans, DateTime in ms) or a str (String, Text, UUID).

    Raises ``ValueError`` naming the problem when the value field does not fit the datatype (never guesses).
    The caller handles ``is_null`` first."""
    which = metric.WhichOneof("value")
    allowed = FIELDS.get(datatype)
    if allowed is None:
        raise ValueError(f"datatype {name_of(datatype)} is not a tag value")
    if which not in allowed:
        raise ValueError(f"datatype {name_of(datatype)} carried in {which or 'no value field'}")
    raw: Any = getattr(metric, which)
    bits = SIGNED_BITS.get(datatype)
    if bits is not None:
        raw &= (1 << bits) - 1
        if raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return float(raw)
    if isinstance(raw, str):
        return raw
    return float(raw)


def properties_of(props: pb.Payload.PropertySet) -> dict[str, Any]:
    """A metric's property set as a plain dict (nested sets as dicts, lists of sets as lists; null as None)."""
    out: dict[str, Any] = {}
    for key, pv in zip(props.keys, props.values, strict=False):
        out[key] = _property_value(pv)
    return out


def _property_value(pv: pb.Payload.PropertyValue) -> Any:
    if pv.is_null:
        return None
    which = pv.WhichOneof("value")
    if which is None or which == "extension_value":
        return None
    if which == "propertyset_value":
        return properties_of(pv.propertyset_value)
    if which == "propertysets_value":
        return [properties_of(s) for s in pv.propertysets_value.propertyset]
    raw: Any = getattr(pv, which)
    bits = SIGNED_BITS.get(pv.type)
    if bits is not None and isinstance(raw, int):
        raw &= (1 << bits) - 1
        if raw >= 1 << (bits - 1):
            raw -= 1 << bits
    return raw
