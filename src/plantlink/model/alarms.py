"""Alarm definitions in the plant model (ISA-18.2): limit, deviation, rate of change, discrete, comm loss.

Each tag may carry ``alarms:``. Per-alarm checks (a limit where one is needed, no negative delay) run in
pydantic; checks across alarms and tags (HI below LO, unknown setpoint tag, unknown machine state) are in
``machine_alarm_problems``, which the loader calls per machine and reports with file, line and column.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from plantlink.model.production import STATES, State
from plantlink.model.schema_base import Strict
from plantlink.model.types import Duration, Name

AlarmType = Literal["hihi", "hi", "lo", "lolo", "deviation", "rate", "discrete", "comm", "spc", "anomaly", "rul",
                    "edge"]
#: Alarms raised by the analytics (a tag's ``spc:`` block, a machine's ``anomaly:`` and ``rul:`` blocks), never
#: declared under ``alarms:``: their condition is computed outside the engine (``engines.alarms.derived``).
DERIVED_TYPES = ("spc", "anomaly", "rul", "edge")
Priority = Literal["critical", "high", "medium", "low"]
#: Priorities from the most to the least urgent (index = the code used by the engine).
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
LIMIT_TYPES = ("hihi", "hi", "lo", "lolo")
_NEEDS_LIMIT = ("hihi", "hi", "lo", "lolo", "deviation", "rate")


class AlarmDef(Strict):
    """One alarm on a tag.

    - ``hihi``/``hi``: active while the value is above ``limit``; normal again at or below ``limit - deadband``.
    - ``lo``/``lolo``: active while the value is below ``limit``; normal again at or above ``limit + deadband``.
    - ``deviation``: active while ``|value - setpoint| > limit`` (``setpoint``: a tag of the same machine);
      normal again at or below ``limit - deadband``.
    - ``rate``: active while ``|d value / dt| > limit`` (units per second, between consecutive samples).
    - ``discrete``: active while the value equals ``value`` (default 1: a true boolean).
    - ``comm``: active while the tag's quality is bad (for at least ``on_delay``).

    ``on_delay``/``off_delay``: the condition must hold that long (on sample timestamps) before the alarm
    activates / returns to normal. ``suppress_when_state``: suppressed by design while the tag's machine is in
    one of these states (e.g. ``[planned_stop]``). ``latched``: stays annunciated after the condition clears
    until an operator resets (acknowledges) it.
    """

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
    suppress_when_state: list[State] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_of_type(self) -> AlarmDef:
        if self.type in DERIVED_TYPES:
            raise ValueError(f"{self.type} alarms come from the {self.type} block, they are not declared under alarms")
        if self.type in _NEEDS_LIMIT and self.limit is None:
            raise ValueError(f"a {self.type} alarm needs a limit")
        if self.type in ("deviation", "rate") and self.limit is not None and self.limit <= 0:
            raise ValueError(f"the limit of a {self.type} alarm must be above 0, got {self.limit}")
        if self.type == "deviation" and self.setpoint is None:
            raise ValueError("a deviation alarm needs setpoint: the tag holding the setpoint")
        if self.type != "deviation" and self.setpoint is not None:
            raise ValueError(f"setpoint is only for deviation alarms, not {self.type}")
        if self.type != "discrete" and self.value is not None:
            raise ValueError(f"value is only for discrete alarms, not {self.type}")
        if self.type in ("discrete", "comm") and self.limit is not None:
            raise ValueError(f"a {self.type} alarm takes no limit")
        return self

    @property
    def trigger_value(self) -> float:
        """The value a discrete alarm reacts to."""
        return 1.0 if self.value is None else self.value

    def limit_text(self, unit: str = "") -> str:
        """The alarm's limit as people read it beside the value (``> 80 °C``, ``|value - setpoint| > 5 bar``,
        ``= 1``, ``bad quality``), from the model: what the value is compared with."""
        u = f" {unit}" if unit else ""
        lim = "" if self.limit is None else f"{self.limit:g}"
        if self.type in ("hihi", "hi"):
            return f"> {lim}{u}"
        if self.type in ("lo", "lolo"):
            return f"< {lim}{u}"
        if self.type == "deviation":
            return f"|value - {self.setpoint}| > {lim}{u}"
        if self.type == "rate":
            return f"rate > {lim}{u}/s"
        if self.type == "discrete":
            return f"= {self.trigger_value:g}"
        if self.type in DERIVED_TYPES:
            return "" if self.limit is None else f"{'<' if self.type == 'rul' else '>'} {lim}"
        return "bad quality"


#: A problem found by ``machine_alarm_problems``: where below the machine (a loader location) and why.
AlarmProblem = tuple[tuple[str | int, ...], str]

# limit pairs that must be ordered: (higher, lower) - the first must be above the second
_ORDER = (("hihi", "hi"), ("hi", "lo"), ("lo", "lolo"), ("hihi", "lo"), ("hi", "lolo"), ("hihi", "lolo"))


def machine_alarm_problems(machine: Any) -> list[AlarmProblem]:
    """Cross checks of the alarms of one machine (``schema.Machine``): unique names per tag, ordered limits
    (hihi > hi > lo > lolo), setpoint tags that exist on the machine and are not the tag itself."""
    names = {t.name for t in machine.tags}
    out: list[AlarmProblem] = []
    for ti, tag in enumerate(machine.tags):
        seen: dict[str, int] = {}
        limits: dict[str, tuple[int, float]] = {}
        for ai, a in enumerate(tag.alarms):
            loc: tuple[str | int, ...] = ("tags", ti, "alarms", ai)
            if a.name in seen:
                out.append(((*loc, "name"), f"duplicate alarm name {a.name!r} on tag {tag.name!r}"))
            seen.setdefault(a.name, ai)
            if a.type in LIMIT_TYPES and a.limit is not None:
                if a.type in limits:
                    out.append(((*loc, "type"), f"tag {tag.name!r} has more than one {a.type} alarm"))
                limits.setdefault(a.type, (ai, a.limit))
            if a.setpoint is not None and a.setpoint not in names:
                known = ", ".join(sorted(names))
                msg = f"no tag {a.setpoint!r} on machine {machine.name!r} (its tags: {known})"
                out.append(((*loc, "setpoint"), msg))
            elif a.setpoint == tag.name:
                out.append(((*loc, "setpoint"), "a deviation alarm's setpoint must be another tag"))
        for high, low in _ORDER:
            if high in limits and low in limits and not limits[high][1] > limits[low][1]:
                ai, hv = limits[high]
                out.append(((*("tags", ti, "alarms", ai), "limit"),
                            f"{high} limit {hv} must be above the {low} limit {limits[low][1]} on tag {tag.name!r}"))
    return out


__all__ = ["DERIVED_TYPES", "PRIORITIES", "STATES", "AlarmDef", "AlarmProblem", "AlarmType", "Priority",
           "machine_alarm_problems"]
