"""Energy as the API answers it: JSON encoding of :mod:`plantlink.services.energy` (how the figures are
computed: that module, ``engines.energy`` and docs/energy.md)."""

from __future__ import annotations

from typing import Any

from plantlink.api.scope import services_of
from plantlink.api.timefmt import stamp
from plantlink.identity import Caller
from plantlink.services.energy import EnergyInputs, EnergyReport, EnergyResult

__all__ = ["energy", "figures", "report"]

_EMPTY = ("total_kwh", "running_kwh", "idle_kwh", "idle_share", "kwh_per_good_part", "running_kwh_per_good_part",
          "cost", "idle_cost")


def figures(inputs: EnergyInputs | None, r: EnergyResult | None) -> dict[str, Any]:
    """The figures of one machine or scope; all null when nothing of it has an energy tag."""
    if inputs is None or r is None:
        return {**dict.fromkeys(_EMPTY), "kwh_by_state": None, "good_parts": None, "unattributed_kwh": None,
                "unknown_state_kwh": None, "measured_s": None, "unmeasured_s": None, "notes": []}
    return {"total_kwh": r.total_kwh, "running_kwh": r.running_kwh, "idle_kwh": r.idle_kwh,
            "idle_share": r.idle_share, "kwh_per_good_part": r.kwh_per_good_part,
            "running_kwh_per_good_part": r.running_kwh_per_good_part, "cost": r.cost, "idle_cost": r.idle_cost,
            "kwh_by_state": dict(sorted(inputs.by_state.items())), "good_parts": inputs.good,
            "unattributed_kwh": inputs.gap_kwh, "unknown_state_kwh": inputs.unknown_state_kwh,
            "measured_s": inputs.measured_s, "unmeasured_s": inputs.unmeasured_s, "notes": r.notes}


def report(rep: EnergyReport) -> dict[str, Any]:
    out = {"scope": rep.scope, "kind": rep.kind, **stamp(rep.start_us, "start"), **stamp(rep.end_us, "end"),
           "currency": rep.currency, **figures(rep.total, rep.result),
           "without_energy": list(rep.without_energy)}
    if rep.kind != "machine":
        out["machines"] = [{"machine": m.machine, "currency": m.currency, **figures(m.inputs, m.result)}
                           for m in rep.machines]
    if rep.shift is not None:
        out.update(shift=rep.shift, day=rep.day)
    return out


def energy(rt: Any, who: Caller, scope: str, start_us: int, end_us: int, *, by_shift: bool = False,
           now: int | None = None) -> dict[str, Any]:
    """Energy of a scope over ``[start, end)``; with ``by_shift`` its ``shifts`` too."""
    total, shifts = services_of(rt).energy.energy(who, scope, start_us, end_us, by_shift=by_shift, now=now)
    out = report(total)
    if by_shift:
        out["shifts"] = [report(s) for s in shifts]
    return out
