"""Write settings of a writable tag: limits, step, allowed values, role, interlocks, two-person rule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from plantlink.model.schema_base import Strict
from plantlink.model.types import PositiveDuration

Role = Literal["operator", "engineer", "admin"]


class WriteSpec(Strict):
    min: float | None = None
    max: float | None = None
    max_step: float | None = Field(default=None, gt=0)
    allowed: list[float | str] | None = None
    role: Role = "operator"
    #: Expressions over other tags' live values that must all hold, e.g. ``press1.state == 5``.
    interlocks: list[str] = Field(default_factory=list)
    #: A critical write needs a second person's approval.
    critical: bool = False
    #: Shortest time between two writes to this tag.
    min_interval: PositiveDuration = 1.0
    #: How long the read-back may take to show the new value.
    verify_timeout: PositiveDuration = 5.0
