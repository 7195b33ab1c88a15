"""One line on the machine page for its analytics: the anomaly score and the detector's mode, and the
remaining useful life with its band and expected failure date (site time). Read once when the page opens
from the engines' last results (in memory: no historian query, no chart); nothing shown without a block."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from plantlink.hmi.widgets import Hmi, local_time


def anomaly_text(st: dict[str, Any] | None) -> str | None:
    if st is None:
        return None
    if st.get("problem"):
        return f"Anomaly ({st['mode']}): {st['problem']}"
    if not st.get("trained"):
        return f"Anomaly ({st['mode']}): not trained"
    score = st.get("score")
    shown = "—" if score is None else f"{score:.2f}"
    return f"Anomaly score {shown} (limit {st['limit']:.2g}, {st['mode']})"


def rul_text(st: dict[str, Any] | None, tz: str) -> str | None:
    if st is None:
        return None
    est = st.get("estimate")
    if est is None:
        return f"Remaining life: {st.get('problem') or 'not estimated yet'}"
    at = local_time(int(est["failure"][1] * 1e6), tz, True)
    return (f"Remaining life {est['hours']:.0f} h ({est['lower_hours']:.0f} to {est['upper_hours']:.0f} h), "
            f"failure expected {at}")


def analytics_line(h: Hmi, machine: str, tz: str) -> None:
    """The line, or nothing when the machine has neither an anomaly nor a rul block."""
    svc = h.services.analytics
    texts = [t for t in (anomaly_text(svc.anomaly_of(machine)), rul_text(svc.rul_of(machine), tz)) if t]
    if texts:
        ui.label(" · ".join(texts)).classes("pl-muted text-sm").props('data-testid="analytics-line"')
