"""The cost of OEE losses, in the line's currency (see docs/oee.md, "The cost of losses").

* availability loss = downtime hours (PBT - APT) x ``downtime_per_hour``
* performance loss  = parts not made ((APT - PRI x PQ) / PRI, never below 0) x ``margin_per_part``
* quality loss      = scrap parts (SQ) x ``margin_per_part``
* total             = the sum of the three
"""

from __future__ import annotations

from typing import TypedDict

from plantlink.engines.oee import OeeInputs, OeeResult
from plantlink.model.production import Costs


class CostOfLosses(TypedDict):
    availability_loss: float
    performance_loss: float
    quality_loss: float
    total: float
    currency: str
    #: The quantities the costs were computed from.
    downtime_h: float
    parts_not_made: float
    scrap_parts: float


def losses(result: OeeResult, inputs: OeeInputs, costs: Costs) -> CostOfLosses:
    """Money lost to each OEE loss. A negative performance loss (effectiveness above 1, a PRI set too high)
    costs nothing: it is not credited as a gain. With aggregated inputs (:func:`~plantlink.engines.oee.combine`)
    parts not made are counted at the PQ-weighted mean PRI."""
    downtime_h = max(result.availability_loss_s, 0.0) / 3600.0
    parts_not_made = max(result.performance_loss_s, 0.0) / inputs.pri_s if inputs.pri_s > 0 else 0.0
    availability = downtime_h * costs.downtime_per_hour
    performance = parts_not_made * costs.margin_per_part
    quality = inputs.sq * costs.margin_per_part
    return CostOfLosses(
        availability_loss=availability,
        performance_loss=performance,
        quality_loss=quality,
        total=availability + performance + quality,
        currency=costs.currency,
        downtime_h=downtime_h,
        parts_not_made=parts_not_made,
        scrap_parts=inputs.sq,
    )
