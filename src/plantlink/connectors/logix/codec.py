"""What a Logix reply means for a point (the controller's type checked against the configured one) and what a
written value becomes (checked against the type's range)."""

from __future__ import annotations

import math
from typing import Any

from plantlink.connectors.logix.address import NAMES, RANGES, STRING_HANDLE, STRUCT_CODE
from plantlink.errors import PointError


def plc_type(code: int | None, value: Any) -> str:
    """The Logix type name of a reply's type code (``value`` tells a STRING from other structures)."""
    if code is None:
        return "BOOL" if isinstance(value, bool) else "unknown"
    if code == STRUCT_CODE:
        return "STRING" if isinstance(value, str) else "a structure"
    if code == 0xD3:
        return "DWORD"
    return NAMES.get(code, f"type 0x{code:02X}")


def mismatch(name: str, want: str | None, got: str, value: Any) -> str | None:
    """Why the reply for tag ``name`` cannot feed a point of type ``want`` (None when it can)."""
    if isinstance(value, bool):
        got = "BOOL"  # a bit of an integer (Status.3), or a BOOL array element
    if want is None:
        if isinstance(value, (bool, int, float)):
            return None
        return f"tag {name} is {got} in the controller: not a number (set the point's type)"
    if want == got:
        return None
    return f"tag {name} is {got} in the controller, not {want} as configured"


def to_float(value: Any) -> float:
    return float(value) if not isinstance(value, bool) else (1.0 if value else 0.0)


def encode(type_: str, value: Any, path: str) -> Any:
    """The value to write to a tag of Logix type ``type_`` (a PointError when it does not fit)."""
    if type_ == "STRING":
        text = str(value)
        if len(text.encode("utf-8")) > 82:
            raise PointError(f"{path}: {len(text)} characters do not fit a STRING (82)")
        return text
    if type_ == "BOOL":
        return bool(value)
    f = float(value)
    if type_ in ("REAL", "LREAL"):
        if not math.isfinite(f):
            raise PointError(f"{path}: {value!r} is not a finite number")
        return f
    if f != round(f):
        raise PointError(f"{path}: {value!r} is not a whole number ({type_})")
    lo, hi = RANGES[type_]
    if not lo <= round(f) <= hi:
        raise PointError(f"{path}: {value!r} is out of range for {type_} ({lo}..{hi})")
    return round(f)


__all__ = ["STRING_HANDLE", "encode", "mismatch", "plc_type", "to_float"]
