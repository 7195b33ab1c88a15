"""Wallboard: a dark, read-only shop-floor display of a line (``/hmi/wall/<line>``) or of every line of a site in
turn (``/hmi/wall/<site>``, ``?rotate=`` seconds per line, 5 to 600, default 20).

Large machine tiles: the state in words (coloured only when abnormal, ISA-101), the OEE of the current shift,
parts against the target at the ideal rate over the planned time so far, and the active alarms; beside the
line's name, the line's kWh per good part over the shift when a machine of it has an energy tag. No menu and no
link: a TV in kiosk mode shows it, opened with a display token (``plantlink.auth.display``) or by any user who
may view the site. Tiles follow the live hub; the shift figures are refreshed every ``KPI_PERIOD_S``.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from nicegui import ui

from plantlink.auth.display import may_show
from plantlink.errors import NotFound, PlantlinkError
from plantlink.hmi import data, oeefmt, theme
from plantlink.hmi.data import Kpi, LineView
from plantlink.hmi.energypanel import line_energy
from plantlink.hmi.guard import live_timer
from plantlink.hmi.widgets import LIVE_PERIOD_S, Hmi, forbidden, hmi, local_time, not_found, principal_of, to_login
from plantlink.identity import Principal
from plantlink.services.energy import EnergyReport
from plantlink.services.handover import Board

ROTATE_DEFAULT_S, ROTATE_MIN_S, ROTATE_MAX_S = 20, 5, 600
KPI_PERIOD_S = 30.0


def rotate_of(request: Request) -> int | str:
    """The ``rotate`` query parameter in seconds, or the sentence saying why it is refused."""
    raw = request.query_params.get("rotate")
    if raw is None:
        return ROTATE_DEFAULT_S
    if not raw.isdigit() or not ROTATE_MIN_S <= int(raw) <= ROTATE_MAX_S:
        return f"rotate must be a whole number of seconds from {ROTATE_MIN_S} to {ROTATE_MAX_S}, got {raw[:20]!r}"
    return int(raw)


def lines_of(h: Hmi, principal: Principal, path: str) -> list[LineView] | Response:
    """The lines a wallboard of ``path`` (a line or a site) shows to ``principal``."""
    path = path.strip("/")
    try:
        lines = [h.view.line(path)]
    except NotFound:
        try:
            lines = list(h.view.site(path).lines)
        except NotFound:
            return not_found(f"no line or site {path!r} in the plant model")
    if principal.kind == "display":
        lines = [ln for ln in lines if may_show(principal, ln.path)]
        return lines or forbidden(f"this display shows only {principal.scope}")
    if not lines or not principal.can(lines[0].site, "viewer"):
        return forbidden(f"you have no access to {path}")
    return lines


async def wall_page(request: Request, path: str) -> Response | None:
    principal = principal_of(request)
    if principal is None:
        return to_login(request)
    h = hmi()
    rotate = rotate_of(request)
    if isinstance(rotate, str):
        return HTMLResponse(f"<!doctype html><title>Bad request</title><h1>Bad request</h1><p>{rotate}</p>", 400)
    lines = lines_of(h, principal, path)
    if isinstance(lines, Response):
        return lines
    h.hub.ensure_started()
    ui.page_title(f"{lines[0].name if len(lines) == 1 else lines[0].site} · wallboard")
    ui.add_css(theme.WALL_CSS)
    ui.query(".nicegui-content").classes("p-4 gap-4")
    root = ui.element("div").classes("w-full").props(
        f'data-testid="wall" data-current="{lines[0].path}" data-lines="{len(lines)}" data-rotate="{rotate}"')
    with root:
        panels = [WallPanel(h, principal, ln) for ln in lines]
    wall = Wall(root, panels)
    for p in panels:
        await p.refresh_kpis()
    live_timer(LIVE_PERIOD_S, wall.update)
    live_timer(KPI_PERIOD_S, wall.refresh_kpis)
    if len(panels) > 1:
        live_timer(rotate, wall.next, immediate=False)  # the first line shows for a whole period
    return None


@dataclass
class WallTile:
    tile: ui.element
    state: ui.label
    oee: ui.label
    parts: ui.label
    alarms: ui.label

    def show_state(self, state: str | None) -> None:
        look = theme.state_look(state)
        self.tile.style(replace=theme.wall_tile_style(state))
        self.tile.props(f'data-state="{state or theme.NO_STATE}"')
        self.state.set_text(look.label)

    def show_kpi(self, k: Kpi | None) -> None:
        oeefmt.flag(self.oee, k)
        if k is None:
            self.oee.set_text("OEE —")
            self.parts.set_text("")
            return
        self.oee.set_text(f"OEE {oeefmt.oee(k.result)}")
        target = k.inputs.pbt_s / k.inputs.pri_s if k.inputs.pri_s > 0 else None
        self.parts.set_text(f"{k.parts:,.0f} parts" + (f" / target {target:,.0f}" if target is not None else ""))

    def show_alarms(self, count: int) -> None:
        self.alarms.set_text(f"⚠ {count} alarm{'s' if count != 1 else ''}" if count else "No alarms")
        self.alarms.props(f'data-alarms="{count}"')
        self.alarms.classes(replace="pl-wall-alarms" + (" pl-wall-alarms-on" if count else ""))


class WallPanel:
    """One line on the wall: its name, shift, tiles and the latest handover note."""

    def __init__(self, h: Hmi, principal: Principal, ln: LineView):
        self.h, self.principal, self.ln = h, principal, ln
        with ui.element("div").classes("w-full").props(f'data-testid="wall-line" data-line="{ln.path}"') as el:
            with ui.row().classes("items-baseline gap-6 w-full"):
                ui.label(f"{ln.area} / {ln.name}").classes("pl-wall-title")
                self.shift = ui.label("").classes("pl-wall-sub").props('data-testid="wall-shift"')
                self.energy = ui.label("").classes("pl-wall-sub").props('data-testid="wall-energy"') \
                    if any(m.model.energy is not None for m in ln.machines) else None
            with ui.element("div").classes("pl-wall-grid"):
                self.tiles = {m.path: self._tile(m.path, m.name) for m in ln.machines}
            self.note = ui.label("").classes("pl-wall-note").props('data-testid="wall-note"')
        self.element = el
        self.ticks: dict[str, int] = {}

    def _tile(self, path: str, name: str) -> WallTile:
        state = self.h.hub.state(path)
        with ui.element("div").classes("pl-wall-tile").props(f'data-machine="{path}"') as tile:
            ui.label(name).classes("pl-wall-name")
            st = ui.label("").classes("pl-wall-state")
            oee = ui.label("OEE —").classes("pl-wall-figure")
            parts = ui.label("").classes("pl-wall-figure")
            alarms = ui.label("").classes("pl-wall-alarms")
        refs = WallTile(tile, st, oee, parts, alarms)
        refs.show_state(state)
        return refs

    def update_states(self) -> None:
        hub = self.h.hub
        for path, refs in self.tiles.items():
            t = hub.state_tick.get(path, 0)
            if self.ticks.get(path) != t:
                self.ticks[path] = t
                refs.show_state(hub.state(path))

    def show_alarms(self, counts: Counter[str]) -> None:
        for path, refs in self.tiles.items():
            refs.show_alarms(counts.get(path, 0))

    async def refresh_kpis(self) -> None:
        view, ln, who = self.h.view, self.ln, self.principal
        start, end = view.period(ln.site, "shift")
        kpis = await asyncio.to_thread(data.line_kpis, view, ln, start, end, who)
        if self.energy is not None:
            self._show_energy(await asyncio.to_thread(line_energy, self.h.services, who, ln.path, start, end))
        try:
            board: Board | None = await asyncio.to_thread(self.h.services.handover.board, who, ln.path)
        except PlantlinkError:  # (the store closed: the tiles go on without the handover)
            board = None
        for path, refs in self.tiles.items():
            refs.show_kpi(kpis.get(path))
        line = kpis.get(ln.path)
        tz = view.site(ln.site).timezone
        shift = f"Shift {board.current.name} since {local_time(board.current.start_us, tz)}" if board else ""
        self.shift.set_text(shift + (f" · line OEE {oeefmt.oee(line.result)}" if line is not None else ""))
        note = board.latest if board else None
        self.note.set_text("" if note is None else
                           f"Handover ({note.author}, {local_time(note.ts_us, tz, True)}): {note.text}")


    def _show_energy(self, found: EnergyReport | PlantlinkError) -> None:
        assert self.energy is not None
        per_part = found.result.kwh_per_good_part if isinstance(found, EnergyReport) and found.result else None
        self.energy.set_text(f"{per_part_text(per_part)} per good part")
        if isinstance(found, EnergyReport):
            self.energy.props(f'data-start-us="{found.start_us}" data-end-us="{found.end_us}" '
                              f'data-kwh-per-part="{"" if per_part is None else repr(per_part)}"')


def per_part_text(kwh_per_part: float | None) -> str:
    """Energy per part, readable from afar: Wh below 1 kWh (``45.2 Wh``), else kWh (``1.25 kWh``)."""
    if kwh_per_part is None or not math.isfinite(kwh_per_part):
        return "— kWh"
    return f"{kwh_per_part * 1000:,.1f} Wh" if kwh_per_part < 1 else f"{kwh_per_part:,.2f} kWh"


class Wall:
    def __init__(self, root: ui.element, panels: list[WallPanel]):
        self.root, self.panels, self.shown = root, panels, 0
        for i, p in enumerate(panels):
            p.element.set_visibility(i == 0)

    async def next(self) -> None:
        self.panels[self.shown].element.set_visibility(False)
        self.shown = (self.shown + 1) % len(self.panels)
        self.panels[self.shown].element.set_visibility(True)
        self.root.props(f'data-current="{self.panels[self.shown].ln.path}"')
        await self.panels[self.shown].refresh_kpis()  # the line now shown: its shift figures as of now

    def update(self) -> None:
        sites = sorted({p.ln.site for p in self.panels})
        alarms = data.active_alarms(hmi().services, self.panels[0].principal, sites=sites)
        counts = Counter(a.machine for a in alarms)
        for p in self.panels:
            p.update_states()
            p.show_alarms(counts)

    async def refresh_kpis(self) -> None:
        await self.panels[self.shown].refresh_kpis()
