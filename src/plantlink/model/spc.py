"""A tag's statistical process control settings (its ``spc:`` block): chart, subgroups, specification limits,
rules, and whether violations alarm. docs/plant-model.md, "SPC", shows every key.

Checks that need the rest of the machine (a ``part_counter`` names a tag of the same machine) are in the
loader; that the tag is numeric is checked by ``Tag``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from plantlink.analytics.names import N_MAX, N_MIN, expand
from plantlink.errors import AnalysisError
from plantlink.model.alarms import Priority
from plantlink.model.production import State
from plantlink.model.schema_base import Strict
from plantlink.model.types import PositiveDuration

ChartType = Literal["xbar_r", "xbar_s", "imr", "ewma", "cusum", "p", "u"]
SUBGROUPED = ("xbar_r", "xbar_s")
COUNTS = ("p", "u")
#: The charts whose rules are evaluated live (``alarm: true``): Shewhart charts of measured values.
LIVE = ("imr", "xbar_r", "xbar_s")


class Subgroup(Strict):
    """How consecutive samples form subgroups: exactly one of ``size`` (every N samples), ``every`` (one
    subgroup per time bucket) or ``part_counter`` (a tag of the same machine: a new subgroup when it changes)."""

    size: int | None = Field(default=None, ge=N_MIN, le=N_MAX)
    every: PositiveDuration | None = None
    part_counter: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Subgroup:
        given = [k for k in ("size", "every", "part_counter") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of size, every, part_counter (got {', '.join(given) or 'none'})")
        return self


class Ewma(Strict):
    lam: float = Field(default=0.2, gt=0, le=1, alias="lambda")
    width: float = Field(default=3.0, gt=0, alias="L")


class Cusum(Strict):
    k: float = Field(default=0.5, ge=0)
    h: float = Field(default=5.0, gt=0)


class SpcSettings(Strict):
    chart: ChartType
    subgroup: Subgroup | None = None
    #: p and u charts: units inspected per sample (each sample's value is the count found in them).
    sample_size: float | None = Field(default=None, gt=0)
    lsl: float | None = None
    usl: float | None = None
    target: float | None = None
    #: Rule names (we1..we4, n1..n8) or groups (western_electric, nelson).
    rules: list[str] = Field(default_factory=lambda: ["western_electric"])
    #: Raise an alarm when a rule is violated (live): one alarm per rule, ``<tag path>:spc_<rule>``; ``true``
    #: for every rule of ``rules``, or a list of rules (or groups) that alarm.
    alarm: bool | list[str] = False
    #: The priority of those alarms.
    priority: Priority = "low"
    #: Live: the limits come from the first ``learn`` points (subgroups or values) after start, then stay.
    learn: int = Field(default=25, ge=10, le=10_000)
    #: Live: a rule's alarm condition clears after this many points in a row without the pattern.
    clear_after: int = Field(default=5, ge=1, le=1000)
    #: Live: the alarms are suppressed by design while the machine is in one of these states.
    suppress_when_state: list[State] = Field(default_factory=list)
    ewma: Ewma = Field(default_factory=Ewma)
    cusum: Cusum = Field(default_factory=Cusum)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        try:
            expand(value)
        except AnalysisError as exc:
            raise ValueError(exc.reason) from None
        return value

    @field_validator("alarm")
    @classmethod
    def _alarm_rules(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            cls._rules(value)
        return value

    @property
    def alarm_rules(self) -> tuple[str, ...]:
        """The rules that raise alarms live (none when ``alarm`` is false)."""
        if self.alarm is True:
            return expand(self.rules)
        return expand(self.alarm) if isinstance(self.alarm, list) else ()

    @model_validator(mode="after")
    def _consistent(self) -> SpcSettings:
        c = self.chart
        if c in SUBGROUPED and self.subgroup is None:
            raise ValueError(f"chart {c} needs subgroup (size, every or part_counter)")
        if c not in SUBGROUPED and self.subgroup is not None:
            raise ValueError(f"chart {c} plots single samples: leave subgroup out (or use xbar_r / xbar_s)")
        if c == "xbar_r" and self.subgroup is not None and self.subgroup.size is None:
            raise ValueError("an R chart needs equal subgroups: give subgroup.size, or use xbar_s for time buckets "
                             "or a part counter")
        if (c in COUNTS) != (self.sample_size is not None):
            raise ValueError("p and u charts need sample_size (units inspected per sample); other charts take none")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise ValueError(f"lsl ({self.lsl}) must be below usl ({self.usl})")
        lo, hi = self.lsl, self.usl
        if self.target is not None and ((lo is not None and self.target < lo) or (hi is not None and self.target > hi)):
            raise ValueError(f"target ({self.target}) must lie within lsl..usl")
        if self.alarm is True and not self.rules:
            raise ValueError("alarm: true needs at least one rule")
        if self.alarm and (c not in LIVE or (self.subgroup is not None and self.subgroup.size is None)):
            raise ValueError(f"live alarms (alarm: true) work on charts {', '.join(LIVE)} with subgroup.size; "
                             f"chart {c} with this subgroup cannot alarm")
        return self
