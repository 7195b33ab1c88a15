"""What the store returns: plain, immutable records (no SQL types leak above the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

ParetoBy = Literal["reason", "machine", "shift"]
PARETO_BY: tuple[str, ...] = ("reason", "machine", "shift")


#: Why an interval, a downtime event or a run ended: the next state began ("change"), plantlink stopped
#: cleanly ("stop"), or plantlink did not stop cleanly and the next start closed it at the last known time
#: ("crash").
EndReason = Literal["change", "stop", "crash"]
END_CHANGE: Final = "change"
END_STOP: Final = "stop"
END_CRASH: Final = "crash"


@dataclass(frozen=True)
class Interval:
    """A machine in one state from ``start_us`` to ``end_us`` (None while it lasts)."""

    id: int
    machine: str
    line: str
    state: str
    start_us: int
    end_us: int | None
    shift: str | None
    end_reason: str | None = None

    @property
    def duration_us(self) -> int | None:
        return None if self.end_us is None else self.end_us - self.start_us


class Lost(NamedTuple):
    """The time a downtime event lost, and to what (``reason`` None: not assigned yet)."""

    machine: str
    state: str
    reason: str | None
    start_us: int
    end_us: int | None


@dataclass(frozen=True)
class DowntimeEvent:
    id: int
    machine: str
    line: str
    site: str
    start_us: int
    end_us: int | None
    duration_s: float | None
    state: str
    micro: bool
    shift: str | None
    reason: str | None
    reason_group: str | None
    reason_by: str | None
    reason_at: int | None
    comment: str | None
    end_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Run:
    """One run of plantlink: ``end_us`` is its clean stop or, after a crash, its last known time."""

    id: int
    start_us: int
    end_us: int | None
    end_reason: str | None


@dataclass(frozen=True)
class Page:
    items: list[DowntimeEvent]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Totals:
    count: int = 0
    duration_s: float = 0.0


@dataclass(frozen=True)
class ParetoRow:
    """One bar: ``key`` (reason, machine path or shift name; None = not assigned). ``count``/``duration_s``
    are stops that are not micro-stops; micro-stops are counted apart in ``micro``."""

    key: str | None
    group: str | None
    count: int
    duration_s: float
    share: float
    cumulative: float
    micro: Totals = field(default_factory=Totals)


@dataclass(frozen=True)
class Pareto:
    by: str
    start_us: int
    end_us: int
    rows: list[ParetoRow]
    total: Totals
    micro: Totals
    unknown: Totals
