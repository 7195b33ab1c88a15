"""What the KPI service answers with: OEE figures of a machine or a scope, their top loss and top reason, the
cost of losses and the overview's summaries (frozen dataclasses, for the API, the HMI and the CLI)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from plantlink.engines.costs import CostOfLosses, losses
from plantlink.engines.oee import OeeInputs, OeeResult, combine, compute
from plantlink.model.production import Costs


@dataclass(frozen=True)
class TopLoss:
    """The largest OEE loss: ``kind`` is availability, performance or quality."""

    kind: str
    seconds: float


@dataclass(frozen=True)
class TopReason:
    """The downtime reason (or ``<state> (no reason)``) that lost the most time."""

    reason: str
    seconds: float


@dataclass(frozen=True)
class Figures:
    """OEE of a machine or of several (inputs summed)."""

    inputs: OeeInputs
    result: OeeResult

    @classmethod
    def of(cls, inputs: OeeInputs) -> Figures:
        return cls(inputs, compute(inputs))

    @property
    def parts(self) -> float:
        return self.inputs.pq

    @property
    def top_loss(self) -> TopLoss | None:
        r = self.result
        found = {"availability": r.availability_loss_s, "performance": r.performance_loss_s,
                 "quality": r.quality_loss_s}
        kind = max(found, key=lambda k: found[k])
        return TopLoss(kind, found[kind]) if found[kind] > 0 else None


@dataclass(frozen=True)
class OeeReport:
    """OEE of a scope over ``[start_us, end_us)``: the total and, above a machine, each machine's."""

    scope: str
    kind: str  # machine, line, area or site
    start_us: int
    end_us: int
    total: Figures
    machines: tuple[tuple[str, Figures], ...] = ()
    #: The top reason of the scope (key ``scope``) and of each machine (key: its path).
    reasons: Mapping[str, TopReason | None] = field(default_factory=dict)
    period: str | None = None
    shift: str | None = None
    day: str | None = None


@dataclass(frozen=True)
class CostReport:
    line: str
    configured: bool
    start_us: int
    end_us: int
    total: CostOfLosses
    machines: tuple[tuple[str, CostOfLosses], ...]


@dataclass(frozen=True)
class MachineSummary:
    machine: str
    state: str | None
    since_us: int | None
    today: Figures | None
    top_reason: TopReason | None = None


@dataclass(frozen=True)
class LineSummary:
    line: str
    today: Figures | None
    machines: tuple[MachineSummary, ...]
    top_reason: TopReason | None = None


@dataclass(frozen=True)
class SiteSummary:
    site: str
    today: Figures | None
    lines: tuple[LineSummary, ...]
    top_reason: TopReason | None = None


@dataclass(frozen=True)
class Overview:
    generated_us: int
    sites: tuple[SiteSummary, ...]


def cost_of(f: Figures, costs: Costs) -> CostOfLosses:
    """Money lost to the figures' losses at a line's ``costs``."""
    return losses(f.result, f.inputs, costs)


def combined(items: Iterable[OeeInputs]) -> Figures | None:
    found = list(items)
    return Figures.of(combine(found)) if found else None
