"""Serving: ``mount_hmi(app, runtime)`` puts the NiceGUI pages on the API's FastAPI app.

NiceGUI keeps one UI application per process: one app serves the HMI at a time (a later app may take over
after the first stopped, at the same path). No browser storage is
used (no ``storage_secret`` needed): who the user is comes from the request (``request.state.principal``), and
``plantlink.hmi.guard`` keeps checking that user's session while the page is open (``app.state.sessions``).
Everything the browser loads (Vue, Quasar, ECharts, fonts, icons) is served by NiceGUI from the package.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from plantlink.auth.watch import sessions_of
from plantlink.hmi.data import PlantView
from plantlink.hmi.guard import GUARD
from plantlink.hmi.live import LiveHub
from plantlink.hmi.widgets import Hmi, install
from plantlink.services import Services, services_of

if TYPE_CHECKING:
    from plantlink.runtime import Runtime

DEFAULT_MOUNT = "/hmi"
#: how long a page may take to build before NiceGUI answers with an error page (default 3 s)
PAGE_BUILD_S = 30.0
_state: dict[str, object] = {}


def _register_pages() -> None:
    from nicegui import ui

    from plantlink.hmi.alarms import alarms_page
    from plantlink.hmi.approvals import approvals_page
    from plantlink.hmi.audit import audit_page
    from plantlink.hmi.line import line_page
    from plantlink.hmi.machine import machine_page
    from plantlink.hmi.model import model_page
    from plantlink.hmi.oeetime import oee_page
    from plantlink.hmi.overview import overview_page
    from plantlink.hmi.spc import spc_page
    from plantlink.hmi.system import system_page
    from plantlink.hmi.users import users_page
    from plantlink.hmi.wall import wall_page

    # A page answers once it is built (its live timers start at the connection: guard.live_timer), data
    # included: on a loaded box that may take seconds, which NiceGUI's default (3 s) would turn into an error page.
    ui.page("/", response_timeout=PAGE_BUILD_S)(overview_page)
    ui.page("/line/{path:path}", response_timeout=PAGE_BUILD_S)(line_page)
    ui.page("/machine/{path:path}", response_timeout=PAGE_BUILD_S)(machine_page)
    ui.page("/alarms", response_timeout=PAGE_BUILD_S)(alarms_page)
    ui.page("/audit", response_timeout=PAGE_BUILD_S)(audit_page)
    ui.page("/approvals", response_timeout=PAGE_BUILD_S)(approvals_page)
    ui.page("/users", response_timeout=PAGE_BUILD_S)(users_page)
    ui.page("/model", response_timeout=PAGE_BUILD_S)(model_page)  # engineers at every site: plan and apply
    ui.page("/oee", response_timeout=PAGE_BUILD_S)(oee_page)
    ui.page("/system", response_timeout=PAGE_BUILD_S)(system_page)  # every viewer: devices and services' health
    ui.page("/spc/{path:path}", response_timeout=PAGE_BUILD_S)(spc_page)
    # shop-floor wallboard (display tokens: plantlink.auth.display)
    ui.page("/wall/{path:path}", response_timeout=PAGE_BUILD_S)(wall_page)


def mount_hmi(app: FastAPI, runtime: Runtime | Services, *, mount_path: str = DEFAULT_MOUNT) -> None:
    """Serve the HMI under ``mount_path`` of ``app`` over the runtime's ``Services`` (the pages call nothing else).
    Call it after ``runtime.start()`` and after every other
    route is added (the mount catches the paths under it). NiceGUI has one UI application per process: a later
    call (another app, e.g. in tests) serves the same pages for the new runtime, one app at a time, at the
    same path."""
    from nicegui import app as ng_app
    from nicegui import ui

    prefix = mount_path.rstrip("/")
    if not prefix.startswith("/"):
        raise ValueError(f"mount_path must start with '/', got {mount_path!r}")
    if _state.get("prefix", prefix) != prefix:
        raise ValueError(f"the HMI was mounted at {_state['prefix']} before in this process; use the same path")
    services = services_of(runtime)
    hub = LiveHub(PlantView(services))
    install(Hmi(services, hub.view, hub, prefix, accounts=lambda: getattr(app.state, "auth", None)),
            source=lambda: services_of(runtime))

    def record(kind: str, actor: str, site: str | None, target: str, details: dict[str, Any]) -> None:
        audit = getattr(app.state, "audit", None)
        if audit is not None:
            audit.record(kind, actor, site, target, details)
        else:
            services.audit.record(kind, actor, site, target, details)

    GUARD.install(lambda: sessions_of(app.state), record)  # looked up when used: auth may be installed later
    if _state.get("app") is app:
        return
    if _state:  # a later app in the same process (tests, embedding): NiceGUI is set up already
        _remount(app, prefix)
        _state["app"] = app
        return
    _state["prefix"] = prefix
    _register_pages()
    _stylesheet(prefix)
    ng_app.on_startup(_start_hub)
    ng_app.on_shutdown(_stop_hub)
    ui.run_with(app, mount_path=prefix, title="plantlink", dark=False, show_welcome_message=False,
                reconnect_timeout=10.0, tailwind=False)
    _state["app"] = app


#: Tailwind's CSS for the HMI's classes, compiled ahead (``scripts/hmi_css.py``; ``make css``): NiceGUI's
#: in-browser Tailwind compiled it on every page load (10-150 ms of a machine page: docs/benchmarks.md).
STYLESHEET = Path(__file__).parent / "static" / "tailwind.css"
#: the stylesheet does not change within a release: browsers keep it a year (its URL names its content)
STYLESHEET_MAX_AGE_S = 365 * 86_400


def stylesheet_path() -> str:
    """The stylesheet's path under the HMI's mount, named by its content."""
    return f"/_plantlink/tailwind-{hashlib.sha256(STYLESHEET.read_bytes()).hexdigest()[:12]}.css"


def _stylesheet(prefix: str) -> None:
    from nicegui import app as ng_app
    from nicegui import ui

    url = ng_app.add_static_file(local_file=STYLESHEET, url_path=stylesheet_path(),
                                 max_cache_age=STYLESHEET_MAX_AGE_S)
    ui.add_head_html(f'<link rel="stylesheet" href="{prefix}{url}">', shared=True)


def _remount(app: FastAPI, prefix: str) -> None:
    """Serve the already configured NiceGUI application from another FastAPI app (after the first one stopped:
    one app at a time), running NiceGUI's startup and shutdown in that app's lifespan as ``run_with`` does."""
    from nicegui import core
    from nicegui.nicegui import _shutdown, _startup

    app.mount(prefix, core.app)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        await _startup()
        async with inner(a) as state:
            yield state
        await _shutdown()

    app.router.lifespan_context = lifespan


def _start_hub() -> None:
    from plantlink.hmi.widgets import hmi

    hmi().hub.ensure_started()
    hmi().hub.want_kpis()  # warm: the first overview shows the day's KPIs at once


async def _stop_hub() -> None:
    from plantlink.hmi.widgets import hmi

    await hmi().hub.stop()
