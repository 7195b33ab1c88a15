"""What a value asked for is judged by, apart from who asks and when: its type, the allowed values, the limits
and the largest step from the current value; how it is kept in the audit trail; whether a read-back matches."""

from __future__ import annotations

import math
from typing import Any

from plantlink.control.interlock import Reading, Value
from plantlink.control.records import Reason, Refusal, jsonable
from plantlink.model.control import WriteSpec

MAX_TEXT = 256


def coerce(tag_type: str, value: Any) -> Value:
    """``value`` as the tag's type (ValueError saying why it does not fit)."""
    if tag_type == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false for a bool tag, got {value!r}")
        return value
    if tag_type == "string":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"expected a string of at most {MAX_TEXT} characters, got {value!r:.40}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number for a {tag_type} tag, got {value!r:.40}")
    if tag_type == "int":
        if not float(value).is_integer():
            raise ValueError(f"expected a whole number for an int tag, got {value!r}")
        return int(value)
    return float(value)


def asked(value: Any) -> Any:
    """A value asked for, as the audit trail keeps it: numbers and booleans as they are (NaN and infinities as
    None), text cut to ``MAX_TEXT`` characters, anything else as the start of its repr."""
    if isinstance(value, bool | int | float):
        return jsonable(value)
    return (value if isinstance(value, str) else repr(value))[:MAX_TEXT]


def limits_of(spec: WriteSpec) -> dict[str, Any]:
    return {"min": spec.min, "max": spec.max, "max_step": spec.max_step, "allowed": spec.allowed,
            "min_interval": spec.min_interval}


def value_refusals(spec: WriteSpec, new: Value) -> list[Refusal]:
    out: list[Refusal] = []
    if spec.allowed is not None and not any(isinstance(a, bool) == isinstance(new, bool) and a == new
                                            for a in spec.allowed):
        out.append(Refusal(Reason.NOT_ALLOWED, f"{new!r} is not one of the allowed values {spec.allowed}"))
    if is_number(new):
        assert isinstance(new, int | float)
        if spec.min is not None and new < spec.min:
            out.append(Refusal(Reason.LIMIT, f"{new:g} is below the minimum {spec.min:g}"))
        if spec.max is not None and new > spec.max:
            out.append(Refusal(Reason.LIMIT, f"{new:g} is above the maximum {spec.max:g}"))
    return out


def step_refusal(spec: WriteSpec, reading: Reading, new: Value) -> Refusal | None:
    """A step is judged from a usable current value only (an unusable one is refused as stale_value)."""
    if spec.max_step is None or not reading.ok or not is_number(new) or not is_number(reading.value):
        return None
    assert isinstance(new, int | float) and isinstance(reading.value, int | float)
    step = abs(new - reading.value)
    if step > spec.max_step:
        return Refusal(Reason.STEP, f"a change of {step:g} from {reading.value:g} is more than the largest step "
                                    f"{spec.max_step:g}")
    return None


def is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def same_value(want: Value, got: Value, tolerance: float | None) -> bool:
    if is_number(want) and is_number(got):
        assert isinstance(want, int | float) and isinstance(got, int | float)
        tol = tolerance if tolerance is not None else max(1e-9, 1e-6 * abs(want))
        return abs(got - want) <= tol
    return type(want) is type(got) and want == got
