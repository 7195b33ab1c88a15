"""Production parts of the plant model: shift calendars (site), state rules and counters (machine),
downtime reasons and costs (line). Used by the state, OEE and downtime engines.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Literal

from pydantic import Field, field_validator, model_validator

from plantlink.model.schema_base import Strict
from plantlink.model.types import Duration, Name, PositiveDuration

#: Machine states, in the order of their numeric codes (code = index).
STATES: tuple[str, ...] = ("idle", "running", "starved", "blocked", "faulted", "planned_stop", "changeover")
State = Literal["idle", "running", "starved", "blocked", "faulted", "planned_stop", "changeover"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and 0 <= value < 24 * 60:  # YAML 1.1 reads 06:00 as sexagesimal 360
        return time(value // 60, value % 60)
    if isinstance(value, str) and (m := _HHMM.match(value)):
        return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"expected a time of day as HH:MM (24 h), got {value!r}")


class Break(Strict):
    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> time:
        return _clock(value)


class Shift(Strict):
    """A shift that starts at ``start`` on each of ``days`` (local time) and ends at ``end``, which may
    be on the next day (a night shift 22:00-06:00). Breaks are planned downtime inside the shift."""

    name: Name
    start: time
    end: time
    days: list[Weekday] = Field(default_factory=lambda: list(_WORKDAYS))
    breaks: list[Break] = Field(default_factory=list)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> time:
        return _clock(value)

    @model_validator(mode="after")
    def _check(self) -> Shift:
        if self.start == self.end:
            raise ValueError("a shift's start and end must differ")
        return self


class Calendar(Strict):
    shifts: list[Shift] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)


class StateRules(Strict):
    """How a machine's state is derived, first rule that applies wins:

    1. ``faulted_if``: a bool tag that is true means faulted;
    2. ``state_tag``: a tag whose value maps to a state through ``state_map`` (default: the codes of STATES);
    3. ``counter``: running while this counter advanced within ``window``, else idle.
    Outside planned busy time (shift calendar) the state is planned_stop whatever the rules say.
    A bad-quality input makes the state unknown (no interval is recorded as production).
    """

    faulted_if: Name | None = None
    state_tag: Name | None = None
    state_map: dict[int, State] | None = None
    counter: Name | None = None
    window: PositiveDuration = 30.0

    @model_validator(mode="after")
    def _some_rule(self) -> StateRules:
        if not (self.faulted_if or self.state_tag or self.counter):
            raise ValueError("give at least one of faulted_if, state_tag or counter")
        return self


class Production(Strict):
    """Counters and the ideal cycle time for OEE (ISO 22400-2: PQ, GQ, SQ, PRI)."""

    produced: Name
    good: Name | None = None
    reject: Name | None = None
    ideal_cycle_time: PositiveDuration
    #: Largest value the counters reach before they roll over to 0 (65535 for 16 bits).
    counter_max: int = Field(default=2**32 - 1, gt=0)
    #: Two counter samples further apart than this have a gap between them (samples went missing): what the
    #: counter advanced across is reported apart, not counted as production. Off by default: counters read
    #: by exception (OPC UA, deadbands) may rightly stay silent for long. Restarts and bad samples are gaps
    #: whatever this says.
    max_gap: PositiveDuration | None = None

    @model_validator(mode="after")
    def _good_or_reject(self) -> Production:
        if self.good is None and self.reject is None:
            raise ValueError("give good or reject (or both): the other is derived from produced")
        return self


class ReasonGroup(Strict):
    name: str = Field(min_length=1)
    reasons: list[str] = Field(min_length=1)


class Downtime(Strict):
    #: Stops shorter than this are micro-stops, counted apart.
    micro_stop: Duration = 120.0
    reasons: list[ReasonGroup] = Field(default_factory=list)


class Costs(Strict):
    currency: str = "USD"
    downtime_per_hour: float = Field(default=0.0, ge=0)
    margin_per_part: float = Field(default=0.0, ge=0)
    #: Price of a kWh: the cost of the energy a machine of the line used while not producing (energy engine).
    energy_per_kwh: float = Field(default=0.0, ge=0)


#: Units of an energy section's tags and their factor to kW (power) or kWh (meter).
POWER_UNITS: dict[str, float] = {"W": 1e-3, "kW": 1.0, "MW": 1e3}
METER_UNITS: dict[str, float] = {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}


class Energy(Strict):
    """Where a machine's energy comes from: a ``power`` tag (W, kW or MW, integrated over time as a step
    function: each value holds until the next sample) or a cumulative ``meter`` tag (Wh, kWh or MWh, a counter
    that may roll over at ``meter_wrap`` or be reset). Give one. See docs/energy.md."""

    power: Name | None = None
    meter: Name | None = None
    #: The reading at which the meter returns to 0 (e.g. 4294967296 x its scale); None: it never wraps, a
    #: decrease is a reset.
    meter_wrap: float | None = Field(default=None, gt=1)
    #: A power value holds at most this long (a meter's two samples further apart have a gap between them):
    #: the time beyond is reported as not measured. Off by default (values read by exception stay silent).
    max_gap: PositiveDuration | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Energy:
        if (self.power is None) == (self.meter is None):
            raise ValueError("give exactly one of power (a kW tag) or meter (a kWh tag)")
        if self.meter_wrap is not None and self.meter is None:
            raise ValueError("meter_wrap applies to a meter tag; this machine's energy comes from power")
        return self
