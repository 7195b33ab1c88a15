"""Small value types shared by the plant model and the plugins' own config models."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """Accept ``250ms``, ``1s``, ``2m``, ``1h``, ``7d`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 1s, 2m or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"expected a duration such as 500ms, 1s, 2m or a number of seconds, got {value!r}")


#: A duration in seconds, written in YAML as ``500ms``, ``1s``, ``2m``, ``1h``, ``7d`` or a number.
Duration = Annotated[float, BeforeValidator(parse_duration)]

#: A positive duration.
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]

#: A name usable in a tag path: letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]


#: Default of a device's ``clock_skew`` (seconds).
DEFAULT_CLOCK_SKEW = 5.0


class DeviceCommon(BaseModel):
    """Keys every device takes, whatever its protocol: the built-in connectors' device models extend it."""

    #: How far ahead of this server's clock a device's timestamp may be. A sample stamped later than that is
    #: stored at its arrival time with quality uncertain, and counted in the device's health.
    clock_skew: Duration = Field(default=DEFAULT_CLOCK_SKEW, ge=0, allow_inf_nan=False)
