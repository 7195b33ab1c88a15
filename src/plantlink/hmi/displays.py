"""The display tokens section of the users and tokens page: read-only wallboard credentials
(``plantlink.auth.display``): list, create for a site or one line (the wallboard URL with the token shown once),
revoke (open wallboards end within seconds). Every call is audited by the service."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote

from nicegui import ui

from plantlink.auth.display import WALL_PREFIX, DisplayInfo, NewDisplay
from plantlink.hmi.widgets import local_time
from plantlink.samples import now_us

if TYPE_CHECKING:
    from plantlink.hmi.users import UsersView

BUTTON = "unelevated no-caps dense color=blue-grey-8"


def wall_url(info: DisplayInfo, secret: str) -> str:
    """The path a TV opens (the token is exchanged for a cookie and leaves the address at once)."""
    return f"{WALL_PREFIX}/{quote(info.scope)}?display={quote(secret)}"


class DisplaysView:
    def __init__(self, page: UsersView):
        self.page = page

    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full").props('data-testid="displays"'):
            ui.label("Display tokens (wallboards, read-only)").classes("text-lg font-semibold")
            self.table = ui.column().classes("w-full gap-0")
            with ui.row().classes("items-end gap-3 w-full flex-wrap"):
                self.name = ui.input("Screen name").props('outlined dense data-testid="display-name"')
                self.scope = ui.input("Site or line (site/area/line)").props(
                    'outlined dense data-testid="display-scope"').classes("min-w-[300px]")
                ui.button("Create display token", on_click=self.create).props(
                    f'{BUTTON} data-testid="create-display"').classes("pl-touch")

    async def render(self) -> None:
        tokens = await self.page.call("Listing display tokens", self.page.auth.displays.list)
        if tokens is None:
            return
        now = now_us()
        self.table.clear()
        with self.table:
            if not tokens:
                ui.label("No display token.").classes("pl-muted")
            for t in tokens:
                state = t.state(now)
                with ui.row().classes("w-full gap-3 items-center border-b border-gray-300 py-1 text-sm "
                                      "flex-wrap").props(f'data-display="{t.id}" data-state="{state}"'):
                    ui.label(t.name).classes("w-40 shrink-0 font-semibold")
                    ui.label(t.scope).classes("w-72 shrink-0")
                    ui.label(state).classes("w-20 shrink-0")
                    ui.label(f"by {t.created_by}").classes("w-32 shrink-0")
                    ui.label(f"last used {local_time(t.last_used_us, self.page.tz, True)}").classes("w-64 shrink-0")
                    if state == "active":
                        ui.button("Revoke", on_click=partial(self.revoke, t.id)).props(
                            f'{BUTTON} data-testid="revoke-display"').classes("pl-touch")

    async def create(self) -> None:
        name, scope = (self.name.value or "").strip(), (self.scope.value or "").strip().strip("/")
        site, _, rest = scope.partition("/")
        line = scope if rest else None
        view = self.page.h.view
        known = line in view.lines if line is not None else any(s.name == site for s in view.sites)
        if name and not known:
            self.page.error.set_text(f"Creating the display token: {scope!r} is neither a site nor a line of the "
                                     "plant (write a site name or site/area/line)")
            return

        def create() -> NewDisplay:
            return self.page.auth.displays.create(name, site, line, actor=self.page.principal.name)

        made = await self.page.call("Creating the display token", create)
        if made is not None:
            self.name.set_value("")
            self.scope.set_value("")
            await self.render()
            self.page.show_secret(f"Wallboard address of {made.info.name}", wall_url(made.info, made.secret))

    async def revoke(self, token_id: str) -> None:
        done = await self.page.call("Revoking the display token", self.page.auth.displays.revoke, token_id,
                                    self.page.principal.name)
        if done is not None:
            await self.render()
