"""The line page's energy panel: per machine and for the line, kWh, kWh per good part and the idle energy
(used while not producing: a loss) with its cost, over the page's range. The figures are the energy
service's (``services.energy``, docs/energy.md), as ``GET /api/v1/energy`` answers them."""

from __future__ import annotations

import math
from collections.abc import Callable

from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.identity import Principal
from plantlink.services import Services
from plantlink.services.energy import EnergyReport, EnergyResult

__all__ = ["energy_panel", "energy_rows", "kwh", "line_energy", "per_part"]


def kwh(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f} kWh"


def per_part(value: float | None) -> str:
    """kWh per part, in Wh below 0.1 kWh (a small part's 0.03 Wh would show as 0.000 kWh)."""
    if value is None or not math.isfinite(value) or value >= 0.1:
        return kwh(value, 3)
    return f"{1000 * value:,.3g} Wh"


def _money(value: float | None, currency: str | None) -> str:
    return "—" if value is None or currency is None else f"{currency} {value:,.2f}"


def _row(name: str, r: EnergyResult, currency: str | None) -> dict[str, str]:
    share = "" if r.idle_share is None else f" ({100 * r.idle_share:.0f} %)"
    return {"name": name, "total": kwh(r.total_kwh), "per_part": per_part(r.kwh_per_good_part),
            "idle": kwh(r.idle_kwh) + share, "idle_cost": _money(r.idle_cost, currency)}


def energy_rows(rep: EnergyReport) -> list[dict[str, str]]:
    """Table rows: each machine with an energy tag, then the line."""
    rows = [_row(m.machine.rsplit("/", 1)[-1], m.result, m.currency) for m in rep.machines]
    if rep.result is not None:
        rows.append(_row("Line", rep.result, rep.currency))
    return rows


def energy_panel(found: EnergyReport | PlantlinkError, span: str = "", export: Callable[[], None] | None = None
                 ) -> None:
    """``found``: the line's energy report over the page's range, or why there is none; ``export`` adds the
    panel's Export menu (the table over the range shown) beside its title."""
    with ui.element("div").classes("pl-panel min-w-0").props(f'data-testid="energy" {span}'):
        with ui.row().classes("items-center gap-4 mb-1"):
            ui.label("Energy: kWh per good part, idle energy (a loss)").classes("text-lg font-semibold")
            if export is not None and isinstance(found, EnergyReport) and found.result is not None:
                export()
        if isinstance(found, PlantlinkError):
            ui.label(str(found)).classes("pl-muted").props('data-testid="energy-note"')
            return
        if found.result is None:
            ui.label("No machine of this line has an energy tag.").classes("pl-muted").props(
                'data-testid="energy-note"')
            return
        cols = [("name", "Machine"), ("total", "Energy"), ("per_part", "Per good part"), ("idle", "Idle (share)"),
                ("idle_cost", "Idle cost")]
        ui.table(columns=[{"name": c, "label": lbl, "field": c, "align": "left"} for c, lbl in cols],
                 rows=energy_rows(found), row_key="name").props("flat dense wrap-cells").classes("w-full")
        notes = [f"Without energy tag: {', '.join(m.rsplit('/', 1)[-1] for m in found.without_energy)}"
                 ] if found.without_energy else []
        notes += found.result.notes
        for text in notes:
            ui.label(text).classes("pl-muted text-sm").props('data-testid="energy-note"')


def line_energy(services: Services, who: Principal, line: str, start_us: int, end_us: int
                ) -> EnergyReport | PlantlinkError:
    """The line's energy report (run in a worker thread), or the error to show in its place."""
    try:
        return services.energy.energy(who, line, start_us, end_us)[0]
    except PlantlinkError as exc:
        return exc
