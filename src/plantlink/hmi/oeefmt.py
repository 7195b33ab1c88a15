"""How OEE figures read in the HMI.

A ratio above 1 (effectiveness, availability, quality rate) means the inputs are wrong: it is shown with a
marker (``⚠``) and explained, never as a plain percentage, and the OEE built from it reads "data problem".
Units the counters advanced across gaps in the data (plantlink stopped, a device disconnected, bad quality)
are not in OEE; they are noted apart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plantlink.hmi.data import Kpi
    from plantlink.services.kpi import OeeResult

MARK = "⚠"
PROBLEM = f"{MARK} data problem"
_TOLERANCE = 1e-9


def ratio(x: float | None) -> str:
    """A KPI ratio as a percentage; above 1 with the marker in front."""
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{100 * x:.1f} %"
    return f"{MARK} {text}" if x > 1 + _TOLERANCE else text


def oee(result: OeeResult) -> str:
    return PROBLEM if result.data_problem else ratio(result.oee)


def gap_note(k: Kpi) -> str | None:
    """The parts counted across gaps in the data, in a few words; None when there were none."""
    parts = []
    if k.inputs.gap_pq > 0:
        parts.append(f"+{k.inputs.gap_pq:,.0f} parts in data gaps, not in OEE")
    if k.inputs.gap_resets > 0:
        parts.append("a counter went back during a data gap")
    return "; ".join(parts) or None


def summary(k: Kpi, label: str = "OEE") -> str:
    """``OEE 71.3 % · 1,204 parts`` (with the gap note in brackets when there is one)."""
    note = gap_note(k)
    return f"{label} {oee(k.result)} · {k.parts:,.0f} parts" + (f" ({note})" if note else "")


def explanation(k: Kpi) -> str:
    """Why the figures are flagged, and what is reported apart: for a tooltip or a line of text."""
    return " · ".join([*k.result.warnings, *k.result.notes])


def flag(element: Any, k: Kpi | None) -> None:
    """Mark ``element`` (a label showing ``k``) as a data problem, with the explanation as its title."""
    problem = k is not None and k.result.data_problem
    element.classes(add="pl-dataproblem" if problem else None, remove=None if problem else "pl-dataproblem")
    element.props["data-problem"] = str(problem).lower()
    element.props.set_optional("title", (explanation(k) or None) if k is not None else None)
