"""Write settings of a writable tag: limits, step, allowed values, role, interlocks, two-person rule.

Checks that need the rest of the plant (the tag is writable, the values fit the tag's type, interlocks name
known tags) are in ``plantlink.control.check.control_problems``, called by the loader.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from plantlink.control.grammar import ExprError, parse
from plantlink.identity import WriteRole
from plantlink.model.schema_base import Strict
from plantlink.model.types import PositiveDuration


def _syntax(expr: str) -> str:
    try:
        parse(expr)
    except ExprError as exc:
        raise ValueError(f"interlock {expr!r}: {exc}") from None
    return expr


#: An interlock expression (grammar: docs/control.md), checked for syntax as the plant loads.
InterlockExpr = Annotated[str, AfterValidator(_syntax)]


class WriteSpec(Strict):
    min: float | None = None
    max: float | None = None
    max_step: float | None = Field(default=None, gt=0)
    #: The only values that may be written (numbers, strings or true/false, matching the tag's type).
    allowed: list[bool | float | str] | None = None
    role: WriteRole = "operator"
    #: Expressions over other tags' live values that must all hold, e.g. ``press1.state == 5``.
    interlocks: list[InterlockExpr] = Field(default_factory=list)
    #: A critical write needs a second person's approval.
    critical: bool = False
    #: Shortest time between two writes to this tag.
    min_interval: PositiveDuration = 1.0
    #: How long the read-back may take to show the new value.
    verify_timeout: PositiveDuration = 5.0
    #: Largest difference between the read-back and the written value that counts as equal (engineering
    #: units); default one millionth of the value (at least 1e-9). Set it to the register's resolution.
    tolerance: float | None = Field(default=None, ge=0)
    #: Oldest acceptable age of the current value (overrides the default of 3 poll periods).
    max_age: PositiveDuration | None = None

    @field_validator("allowed")
    @classmethod
    def _allowed(cls, value: list[bool | float | str] | None) -> list[bool | float | str] | None:
        if value is not None:
            if not value:
                raise ValueError("allowed must list at least one value (or be left out)")
            if len({(type(v), v) for v in value}) != len(value):
                raise ValueError("allowed lists a value twice")
        return value

    @model_validator(mode="after")
    def _range(self) -> WriteSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self
