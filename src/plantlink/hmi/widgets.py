"""Shared pieces of the pages: the HMI context, access checks, the page frame, machine tiles, formatting."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from nicegui import ui

from plantlink.errors import NotFound
from plantlink.hmi import oeefmt, theme
from plantlink.hmi.alarmbar import AlarmBanner
from plantlink.hmi.guard import SESSION_CHECK_JS
from plantlink.identity import ALL_SITES, Principal

if TYPE_CHECKING:
    from plantlink.auth.service import AuthService
    from plantlink.hmi.data import Kpi, MachineView, PlantView
    from plantlink.hmi.live import LiveHub
    from plantlink.services import Services

T = TypeVar("T")

LOGIN_PATH = "/login"
LIVE_PERIOD_S = 0.25  # how often a page looks at the hub for changes


@dataclass
class Hmi:
    services: Services
    view: PlantView
    hub: LiveHub
    prefix: str
    #: the account service of the app (``app.state.auth``), looked up when used; None without auth installed
    accounts: Callable[[], AuthService | None] = lambda: None

    def page(self, kind: str, path: str = "") -> str:
        """A page's path inside the HMI, for ``ui.link`` and ``ui.navigate.to``: NiceGUI adds the mount prefix
        to a path that starts with "/" (given the full URL path they led to ``/hmi/hmi/...``, a 404)."""
        if not kind:
            return "/"
        return f"/{kind}/{quote(path)}" if path else f"/{kind}"

    def href(self, kind: str, path: str = "") -> str:
        """A page's full URL path, for plain HTML (``<a href>`` in ``ui.html``), which nothing prefixes."""
        return self.prefix + self.page(kind, path)

    def oee(self, scope: str) -> str:
        """The OEE-over-time page of a scope (site, area, line or machine), for ``ui.link``."""
        return f"{self.page('oee')}?scope={quote(scope)}"


_CURRENT: list[Hmi] = []
#: Where the running services are (a runtime's, rebuilt when a changed model is applied: ``plantlink apply``).
_SOURCE: list[Callable[[], Services]] = []


def install(h: Hmi, source: Callable[[], Services] | None = None) -> None:
    _CURRENT[:] = [h]
    _SOURCE[:] = [source] if source is not None else []


def hmi() -> Hmi:
    """The HMI context; when a model was applied since, rebuilt over the new services (the hierarchy the pages
    show, the live hub's view): a page opened after an apply shows the applied model."""
    if not _CURRENT:
        raise RuntimeError("the HMI is not mounted: call plantlink.hmi.mount_hmi(app, runtime)")
    h = _CURRENT[0]
    if _SOURCE:
        try:
            now = _SOURCE[0]()
        except Exception:  # the runtime stopping: keep what the pages had
            return h
        if now is not h.services:
            from plantlink.hmi.data import PlantView

            view = PlantView(now)
            h.hub.view = view
            h = replace(h, services=now, view=view)
            _CURRENT[:] = [h]
    return h


# -- access ---------------------------------------------------------------------------------------
def principal_of(request: Request) -> Principal | None:
    p = getattr(request.state, "principal", None)
    return p if isinstance(p, Principal) else None


def to_login(request: Request) -> Response:
    """Send an unauthenticated browser to the login page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(here, safe='')}", status_code=303)


def _page(status: int, title: str, message: str) -> Response:
    """A plain error page; the message (it may quote the address) is escaped."""
    return HTMLResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{html.escape(message)}</p>"
                        f'<p><a href="{hmi().href("")}">Plant overview</a></p>', status_code=status)


def forbidden(message: str) -> Response:
    return _page(403, "Not allowed", message)


def not_found(message: str) -> Response:
    return _page(404, "Not found", message)


def open_object(request: Request, lookup: Callable[[Hmi], T]) -> tuple[Principal, Hmi, T] | Response:
    """The common guard of an object's page: login, then the object (404), then viewer rights at its site (403).
    ``lookup`` finds the object (with a ``site``) in the plant view and raises ``NotFound``."""
    principal = principal_of(request)
    if principal is None:
        return to_login(request)
    h = hmi()
    try:
        obj = lookup(h)
    except NotFound as exc:
        return not_found(str(exc))
    site = obj.site  # type: ignore[attr-defined]
    if not principal.can(site, "viewer"):
        return forbidden(f"you have no access to site {site}")
    return principal, h, obj


def can_change_model(h: Hmi, principal: Principal) -> bool:
    """Whether the plant model page (plan and apply) is for ``principal``: the engineer role at every site of the
    running model (the model service checks the new model's sites too)."""
    sites = h.services.plant.sites
    return bool(sites) and len(h.services.plant.visible_sites(principal, "engineer")) == len(sites)


def data_can_audit(principal: Principal) -> bool:
    """Whether the audit page is any use to ``principal`` (admin at some site)."""
    return any(r == "admin" for r in principal.roles.values())


# -- frame ----------------------------------------------------------------------------------------
def open_page(request: Request, title: str,
              gate: Callable[[Hmi, Principal], Response | None] | None = None) -> tuple[Hmi, Principal] | Response:
    """The start of a page of the plant: the caller (or the login page), its title and the frame with the
    breadcrumb ``enterprise / title``. ``gate`` answers instead of the page (a refusal) before anything is drawn."""
    principal = principal_of(request)
    if principal is None:
        return to_login(request)
    h = hmi()
    if gate is not None and (refused := gate(h, principal)) is not None:
        return refused
    ui.page_title(f"{title} · plantlink")
    frame(principal, [(h.services.plant.enterprise, h.page("")), (title, None)])
    return h, principal


def frame(principal: Principal, crumbs: list[tuple[str, str | None]]) -> None:
    """Header with breadcrumbs (label, page path: ``Hmi.page``) and the user; the page background and styles."""
    ui.add_css(theme.CSS)
    ui.add_body_html(SESSION_CHECK_JS)
    ui.query(".nicegui-content").classes("p-3 md:p-4 gap-3")
    with ui.header().classes("items-center gap-2 px-4 py-2").style(f"background: {theme.ACCENT}"):
        for i, (label, href) in enumerate(crumbs):
            if i:
                ui.label("/").classes("text-white opacity-60")
            if href:
                ui.link(label, href).classes("text-white text-lg font-semibold no-underline pl-touch "
                                              "flex items-center")
            else:
                ui.label(label).classes("text-white text-lg font-semibold")
        ui.space()
        h = hmi()
        AlarmBanner(h.services, principal, f"{h.prefix}/alarms").build()
        if any(principal.can(site, "operator") for site in h.services.plant.sites):
            from plantlink.hmi.approvals import ApprovalBadge  # (approvals builds on this module)

            ApprovalBadge(h, principal).build()
        if any(principal.can(site, "viewer") for site in h.services.plant.sites):
            ui.link("System", h.page("system")).classes("text-white no-underline pl-touch flex items-center").props(
                'data-testid="nav-system"')
        if can_change_model(h, principal):
            ui.link("Model", h.page("model")).classes("text-white no-underline pl-touch flex items-center").props(
                'data-testid="nav-model"')
        if data_can_audit(principal):
            ui.link("Audit", h.page("audit")).classes("text-white no-underline pl-touch flex items-center")
        user_menu(principal)


#: the account pages (``plantlink.auth.account``), outside the HMI's mount: plain anchors, which nothing prefixes
ACCOUNT_LINKS = (("Change password", "/account/password", "key"), ("Log out", "/logout", "logout"))


def can_manage_users(principal: Principal) -> bool:
    """Whether the users and tokens page is for ``principal``: admins at every site (see docs/hmi.md)."""
    return principal.roles.get(ALL_SITES) == "admin"


def user_menu(principal: Principal) -> None:
    """The user's name, opening a menu: change password, log out (only with a browser session); for admins at
    every site, when accounts are managed here, the users and tokens page."""
    with ui.button(principal.name, icon="account_circle").props(
            'flat no-caps color=white data-testid="user" aria-label="Account"').classes("pl-touch"):
        if principal.kind != "session":
            return
        links = list(ACCOUNT_LINKS)
        if can_manage_users(principal) and hmi().accounts() is not None:
            links.insert(0, ("Users", hmi().href("users"), "group"))
        with ui.menu().props('data-testid="user-menu"'):
            for label, href, icon in links:
                with ui.element("a").props(f'href="{href}"').classes(
                        "flex items-center gap-2 px-4 py-3 no-underline text-black pl-touch"):
                    ui.icon(icon)
                    ui.label(label)


def machine_tile(h: Hmi, m: MachineView, state: str | None) -> TileRefs:
    """A clickable tile coloured by state (grey when running), with the day's KPIs below the name."""
    look = theme.state_look(state)
    with ui.element("a").classes("pl-tile").style(theme.tile_style(state)).props(
        f'href="{h.href("machine", m.path)}" data-machine="{m.path}" data-state="{state or theme.NO_STATE}"'
    ) as tile:
        ui.label(m.name).classes("pl-name")
        st = ui.label(look.label).classes("pl-state")
        kpi = ui.label("").classes("pl-kpi")
        loss = ui.label("").classes("pl-kpi")
        alarm = ui.label("").classes("pl-marker").props('data-alarm="none"')
        alarm.set_visibility(False)
    return TileRefs(tile, st, kpi, loss, alarm)


@dataclass
class TileRefs:
    tile: ui.element
    state: ui.label
    kpi: ui.label
    loss: ui.label
    alarm: ui.label
    alarm_shown: str | None = None

    def show_alarm(self, priority: str | None) -> None:
        """The marker of the machine's worst annunciated alarm (hidden without one)."""
        if priority == self.alarm_shown:
            return
        self.alarm_shown = priority
        self.alarm.set_visibility(priority is not None)
        self.alarm.props(f'data-alarm="{priority or "none"}"')
        if priority is not None:
            look = theme.priority_look(priority)
            self.alarm.set_text(f"⚠ {look.label} alarm")
            self.alarm.style(replace=f"background: {look.background}; color: {look.text}")

    def show_state(self, state: str | None) -> None:
        look = theme.state_look(state)
        self.tile.style(replace=theme.tile_style(state))
        self.tile.props(f'data-state="{state or theme.NO_STATE}"')
        self.state.set_text(look.label)

    def show_kpi(self, k: Kpi | None) -> None:
        oeefmt.flag(self.kpi, k)
        if k is None:
            self.kpi.set_text("")
            self.loss.set_text("")
            return
        self.kpi.set_text(oeefmt.summary(k))
        r = k.top_reason
        self.loss.set_text(f"Top reason: {r.reason} ({duration(r.seconds)})" if r else "No stops")


class TileSet:
    """Tiles of one page; ``update`` recolours those whose machine changed state since the last look."""

    def __init__(self, tiles: dict[str, TileRefs]):
        self.tiles = tiles
        hub = hmi().hub
        self.seen = hub.tick
        self.ticks = {p: hub.state_tick.get(p, 0) for p in tiles}

    def update(self) -> bool:
        """Returns whether any tile changed."""
        hub = hmi().hub
        if hub.tick == self.seen:
            return False
        self.seen = hub.tick
        moved = False
        for path, refs in self.tiles.items():
            t = hub.state_tick.get(path, 0)
            if t != self.ticks[path]:
                self.ticks[path] = t
                refs.show_state(hub.state(path))
                moved = True
        return moved


# -- formatting -----------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def money(amount: float, currency: str) -> str:
    return f"{currency} {amount:,.0f}"


def local_time(ts_us: int | None, tz: str, with_date: bool = False) -> str:
    """A time in the site's zone ``tz``; with the date, the zone is named too (``Fri 27 Nov 07:12:03 EST``):
    every view shows its times in one zone, and says which."""
    if ts_us is None:
        return "—"
    t = datetime.fromtimestamp(ts_us / 1e6, ZoneInfo(tz))
    return t.strftime("%a %d %b %H:%M:%S %Z" if with_date else "%H:%M:%S")


def zone_note(tz: str) -> str:
    """The caption of a view's clock: ``Times in America/Toronto (EST, UTC-05:00)``, at the current offset."""
    now = datetime.now(ZoneInfo(tz))
    offset = now.strftime("%z")
    return f"Times in {tz} ({now.strftime('%Z')}, UTC{offset[:3]}:{offset[3:]})"


def axis_time_js(tz: str, with_date: bool = False) -> str:
    """An ECharts formatter (milliseconds -> text) that shows a time axis in the site's zone ``tz`` rather
    than the browser's (``Intl.DateTimeFormat`` with ``timeZone``; no library)."""
    fields = "weekday:'short',day:'2-digit',month:'short'," if with_date else ""
    fmt = (f"new Intl.DateTimeFormat('en-GB',{{{fields}hour:'2-digit',minute:'2-digit',"
           f"second:'2-digit',hourCycle:'h23',timeZone:{json.dumps(tz)}}})")
    return f"(v) => {fmt}.format(new Date(typeof v === 'number' ? v : (Array.isArray(v) ? v[0] : v)))"
