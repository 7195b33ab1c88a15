"""Serving: ``mount_hmi(app, runtime)`` puts the NiceGUI pages on the API's FastAPI app.

NiceGUI keeps one UI application per process, so the HMI is mounted once per process. No browser storage is
used (no ``storage_secret`` needed): who the user is comes from the request (``request.state.principal``).
Everything the browser loads (Vue, Quasar, ECharts, fonts, icons) is served by NiceGUI from the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from plantlink.hmi.data import PlantView
from plantlink.hmi.live import LiveHub
from plantlink.hmi.widgets import Hmi, install

if TYPE_CHECKING:
    from plantlink.runtime import Runtime

DEFAULT_MOUNT = "/hmi"
_state: dict[str, object] = {}


def _register_pages() -> None:
    from nicegui import ui

    from plantlink.hmi.line import line_page
    from plantlink.hmi.machine import machine_page
    from plantlink.hmi.overview import overview_page

    ui.page("/")(overview_page)
    ui.page("/line/{path:path}")(line_page)
    ui.page("/machine/{path:path}")(machine_page)


def mount_hmi(app: FastAPI, runtime: Runtime, *, mount_path: str = DEFAULT_MOUNT) -> None:
    """Serve the HMI under ``mount_path`` of ``app``. Call it after ``runtime.start()`` and after every other
    route is added (the mount catches the paths under it). Once per process."""
    from nicegui import app as ng_app
    from nicegui import ui

    if _state.get("app") is not None and _state["app"] is not app:
        raise RuntimeError("the HMI is already mounted on another app in this process (NiceGUI allows one)")
    prefix = mount_path.rstrip("/")
    if not prefix.startswith("/"):
        raise ValueError(f"mount_path must start with '/', got {mount_path!r}")
    hub = LiveHub(PlantView(runtime))
    install(Hmi(runtime, hub.view, hub, prefix))
    if _state.get("app") is app:
        return
    _register_pages()
    ng_app.on_startup(_start_hub)
    ng_app.on_shutdown(_stop_hub)
    ui.run_with(app, mount_path=prefix, title="plantlink", dark=False, show_welcome_message=False,
                reconnect_timeout=10.0)
    _state["app"] = app


def _start_hub() -> None:
    from plantlink.hmi.widgets import hmi

    hmi().hub.ensure_started()
    hmi().hub.want_kpis()  # warm: the first overview shows the day's KPIs at once


async def _stop_hub() -> None:
    from plantlink.hmi.widgets import hmi

    await hmi().hub.stop()
