"""Plant overview: every site, line and machine the user may see; machine tiles coloured by state with
today's OEE, parts and top loss; each line's OEE and the day's losses in money (line costs)."""

from __future__ import annotations

from collections import defaultdict

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.hmi import data, oeefmt
from plantlink.hmi.data import Kpi, LineView
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import (
    LIVE_PERIOD_S,
    TileRefs,
    TileSet,
    frame,
    hmi,
    machine_tile,
    money,
    principal_of,
    to_login,
)
from plantlink.identity import Principal


async def overview_page(request: Request) -> Response | None:
    principal = principal_of(request)
    if principal is None:
        return to_login(request)
    h = hmi()
    h.hub.ensure_started()
    h.hub.want_kpis()  # the first ones arrive through the live timer: the tiles do not wait for them
    kpis = h.hub.kpis
    ui.page_title("Plant overview · plantlink")
    frame(principal, [(h.services.plant.enterprise, None)])
    sites = h.view.visible_sites(principal)
    if not sites:
        ui.label("Your account has no site. Ask an administrator for access.").classes("text-lg")
        return None
    tiles: dict[str, TileRefs] = {}
    line_labels: dict[str, ui.label] = {}
    site_labels: dict[str, ui.label] = {}
    for site in sites:
        with ui.column().classes("w-full gap-2").props(f'data-site="{site.name}"'):
            with ui.row().classes("items-baseline gap-4"):
                ui.label(site.name.capitalize()).classes("text-2xl font-semibold")
                ui.label(site.description).classes("pl-muted")
                site_labels[site.name] = ui.label("").classes("text-lg").props('data-testid="site-losses"')
                ui.link("OEE over time", h.oee(site.name)).classes("pl-link pl-touch").props('data-testid="oee-link"')
            for ln in site.lines:
                with ui.element("div").classes("pl-panel w-full").props(f'data-line="{ln.path}"'):
                    with ui.row().classes("items-baseline gap-4 mb-2"):
                        ui.link(f"{ln.area} / {ln.name}", h.page("line", ln.path)).classes("pl-link text-lg pl-touch")
                        line_labels[ln.path] = ui.label("").classes("pl-kpi")
                        ui.link("OEE over time", h.oee(ln.path)).classes("pl-link pl-touch").props(
                            'data-testid="oee-link"')
                    with ui.row().classes("gap-3 flex-wrap"):
                        for m in ln.machines:
                            tiles[m.path] = machine_tile(h, m, h.hub.state(m.path))
    live = _Live(tiles, line_labels, site_labels, {ln.path: ln for s in sites for ln in s.lines}, principal)
    live.show_kpis(kpis)
    live.show_alarms()
    live_timer(LIVE_PERIOD_S, live.update)
    return None


class _Live:
    """What one overview page redraws: tile states when they change, KPIs when the hub has new ones."""

    def __init__(self, tiles: dict[str, TileRefs], line_labels: dict[str, ui.label],
                 site_labels: dict[str, ui.label], lines: dict[str, LineView], principal: Principal):
        self.tiles, self.line_labels, self.site_labels, self.lines = tiles, line_labels, site_labels, lines
        self.principal = principal
        self.tile_set = TileSet(tiles)
        self.kpi_seen = hmi().hub.kpi_tick

    def update(self) -> None:
        hub = hmi().hub
        hub.want_kpis()
        self.tile_set.update()
        self.show_alarms()
        if hub.kpi_tick != self.kpi_seen:
            self.kpi_seen = hub.kpi_tick
            self.show_kpis(hub.kpis)

    def show_alarms(self) -> None:
        worst = data.worst_by_machine(data.active_alarms(hmi().services, self.principal))
        for path, refs in self.tiles.items():
            refs.show_alarm(worst.get(path))

    def show_kpis(self, kpis: dict[str, Kpi | None]) -> None:
        for path, refs in self.tiles.items():
            refs.show_kpi(kpis.get(path))
        per_site: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for path, label in self.line_labels.items():
            k = kpis.get(path)
            oeefmt.flag(label, k)
            if k is None:
                label.set_text("")
                continue
            text = oeefmt.summary(k, "OEE today")
            if k.cost is not None:
                text += f" · losses {money(k.cost['total'], k.cost['currency'])}"
                per_site[self.lines[path].site][k.cost["currency"]] += k.cost["total"]
            label.set_text(text)
        for site, label in self.site_labels.items():
            totals = per_site.get(site)
            amounts = " + ".join(money(v, c) for c, v in sorted(totals.items())) if totals else ""
            label.set_text(f"Losses today: {amounts}" if amounts else "")


