"""OPC UA built-in data types: which plantlink tag type each maps to, and encoding a value for a write."""

from __future__ import annotations

import math
from typing import Any

from asyncua import ua

from plantlink.errors import PointError

_V = ua.VariantType

#: Range of each OPC UA integer type.
INT_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    _V.SByte: (-(2**7), 2**7 - 1),
    _V.Byte: (0, 2**8 - 1),
    _V.Int16: (-(2**15), 2**15 - 1),
    _V.UInt16: (0, 2**16 - 1),
    _V.Int32: (-(2**31), 2**31 - 1),
    _V.UInt32: (0, 2**32 - 1),
    _V.Int64: (-(2**63), 2**63 - 1),
    _V.UInt64: (0, 2**64 - 1),
}

#: The plantlink tag type of each supported OPC UA built-in data type (by name).
TAG_TYPE_OF: dict[str, str] = {
    "Boolean": "bool",
    "Float": "float",
    "Double": "float",
    "String": "string",
    **{t.name: "int" for t in INT_RANGES},
}


def builtin_variant_type(data_type: ua.NodeId) -> ua.VariantType | None:
    """The variant type of a built-in DataType node id (ns=0;i=1..25), else None."""
    if data_type.NamespaceIndex == 0 and isinstance(data_type.Identifier, int) and 1 <= data_type.Identifier <= 25:
        return ua.VariantType(data_type.Identifier)
    return None


def to_variant(value: Any, vtype: ua.VariantType, where: str) -> ua.Variant:
    """Encode ``value`` as a variant of ``vtype``; raise PointError naming ``where`` when it does not fit."""
    try:
        return ua.Variant(_convert(value, vtype), vtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PointError(f"{where}: cannot write {value!r} as {vtype.name}: {exc}") from None


def _convert(value: Any, vtype: ua.VariantType) -> Any:
    if vtype == _V.String:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, str):
        raise TypeError("expected a number, got text")
    if vtype == _V.Boolean:
        return bool(value)
    if vtype in (_V.Float, _V.Double):
        return float(value)
    if vtype in INT_RANGES:
        f = float(value)
        if not math.isfinite(f):
            raise ValueError("not a finite number")
        lo, hi = INT_RANGES[vtype]
        i = int(value) if isinstance(value, int) else round(f)
        if not lo <= i <= hi:
            raise ValueError(f"out of range [{lo}, {hi}]")
        return i
    raise TypeError(f"writing {vtype.name} values is not supported")
