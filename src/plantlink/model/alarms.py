"""Alarm definitions in the plant model (ISA-18.2): limit, deviation, rate of change, discrete, comm loss."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from plantlink.model.schema_base import Strict
from plantlink.model.types import Duration, Name

AlarmType = Literal["hihi", "hi", "lo", "lolo", "deviation", "rate", "discrete", "comm"]
Priority = Literal["critical", "high", "medium", "low"]


class AlarmDef(Strict):
    """One alarm on a tag. ``limit`` is the threshold of a limit alarm, the allowed deviation of a deviation
    alarm (from ``setpoint``, a tag of the same machine) or the rate in units per second of a rate alarm;
    a discrete alarm is active while the tag equals ``value``; a comm alarm while the tag's quality is bad
    for ``on_delay``."""

    name: Name
    type: AlarmType
    limit: float | None = None
    setpoint: Name | None = None
    value: float | None = None
    priority: Priority = "medium"
    deadband: float = Field(default=0.0, ge=0)
    on_delay: Duration = Field(default=0.0, ge=0)
    off_delay: Duration = Field(default=0.0, ge=0)
    latched: bool = False
    message: str = ""
    response: str = ""
