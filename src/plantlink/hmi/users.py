"""The users and tokens page (admins at every site): the accounts of ``plantlink.auth.AuthService``.

A table of the users (roles per site, disabled, login back-off, last login); create a user (a generated
password, shown once), change roles, disable and enable, reset the password (generated, shown once), unlock
(clear the login back-off), and per user the API tokens (list, create: the secret shown once, revoke). Every
action calls the service, as the ``plantlink users`` commands do: it is audited with the admin's name and ends
the sessions and live pages it ends from the command line. Refusals (a bad name or role, a token wider than the
user) are shown on the page. The service hashes passwords (argon2) and runs SQL: every call runs in a thread.
Below the users, the display tokens of wallboards (``plantlink.hmi.displays``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from plantlink.auth.records import TokenInfo, User, parse_roles
from plantlink.auth.service import AuthService
from plantlink.errors import PlantlinkError
from plantlink.hmi.displays import DisplaysView
from plantlink.hmi.widgets import (
    Hmi,
    can_manage_users,
    forbidden,
    local_time,
    not_found,
    open_page,
    zone_note,
)
from plantlink.identity import Principal
from plantlink.samples import now_us

T = TypeVar("T")
BUTTON = "unelevated no-caps dense color=blue-grey-8"
ELSEWHERE = ("accounts are not managed by this server (no authentication installed): use the identity provider "
             "or `plantlink users` where the accounts are")


async def users_page(request: Request) -> Response | None:
    opened = open_page(request, "Users", _users_gate)
    if isinstance(opened, Response):
        return opened
    h, principal = opened
    auth = h.accounts()
    assert auth is not None  # the gate refused otherwise
    page = UsersView(h, auth, principal)
    page.build()
    await page.render()
    return None


def _users_gate(h: Hmi, principal: Principal) -> Response | None:
    if h.accounts() is None:
        return not_found(ELSEWHERE)
    if not can_manage_users(principal):
        return forbidden("users and tokens are managed by administrators of every site")
    return None


def roles_text(roles: Mapping[str, str]) -> str:
    """``{"windsor": "operator", "*": "viewer"}`` -> ``"*=viewer, windsor=operator"`` (what the inputs take)."""
    return ", ".join(f"{site}={role}" for site, role in sorted(roles.items()))


def parse_roles_text(text: str) -> dict[str, str]:
    """The inverse of ``roles_text``: SITE=ROLE separated by commas or spaces (InvalidRequest when bad)."""
    return dict(parse_roles([p for p in text.replace(",", " ").split() if p]))


def token_state(t: TokenInfo, now: int) -> str:
    if t.revoked_us is not None:
        return "revoked"
    return "expired" if t.expires_us <= now else "active"


class UsersView:
    def __init__(self, h: Hmi, auth: AuthService, principal: Principal):
        self.h, self.auth, self.principal = h, auth, principal
        #: one clock for the page: the zone of the plant's first site (named on the page)
        self.tz = h.view.site(next(iter(h.services.plant.sites))).timezone
        self.selected: str | None = None

    # -- calling the service -----------------------------------------------------------------------
    async def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a service call in a thread; a refusal is shown on the page (None returned), never raised."""
        self.error.set_text("")
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (PlantlinkError, ValueError) as exc:
            self.error.set_text(f"{what}: {exc}")
            ui.notify(f"{what}: {exc}", type="negative")
            return None

    def show_secret(self, title: str, secret: str) -> None:
        """A secret (password, token) shown once, in a dialog: it cannot be shown again."""
        self.secrets.clear()  # (the button clicked may be gone with a redraw: the dialog lives in a fixed place)
        with self.secrets, ui.dialog().props("persistent") as dialog, ui.card().classes("max-w-full"):
            ui.label(title).classes("text-lg font-semibold")
            ui.label("Copy it now: it is shown only this once.").classes("pl-muted")
            ui.label(secret).classes("font-mono text-lg select-all").style("overflow-wrap: anywhere").props(
                'data-testid="secret"')
            ui.button("Done", on_click=dialog.close).props(f'{BUTTON} data-testid="secret-done"').classes("pl-touch")
        dialog.open()

    # -- layout ------------------------------------------------------------------------------------
    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full"):
            with ui.row().classes("items-center gap-3 w-full flex-wrap"):
                ui.label("Users and API tokens").classes("text-lg font-semibold")
                ui.label(zone_note(self.tz)).classes("pl-muted")
            self.error = ui.label("").classes("font-bold text-red-800").props('role=alert data-testid="users-error"')
            with ui.row().classes("items-end gap-3 w-full flex-wrap"):
                self.new_name = ui.input("New user").props('outlined dense data-testid="new-name"')
                self.new_roles = ui.input("Roles (SITE=ROLE, ...)", placeholder="windsor=operator").props(
                    'outlined dense data-testid="new-roles"').classes("min-w-[260px]")
                ui.button("Create user", on_click=self.create_user).props(
                    f'{BUTTON} data-testid="create-user"').classes("pl-touch")
            self.table = ui.column().classes("w-full gap-0").props('data-testid="users-table"')
        self.detail = ui.element("div").classes("pl-panel w-full").props('data-testid="user-detail"')
        self.detail.set_visibility(False)
        self.displays = DisplaysView(self)
        self.displays.build()
        self.secrets = ui.element("div")

    async def render(self) -> None:
        def load() -> tuple[list[User], dict[str, Any]]:
            return self.auth.users(), self.auth.throttle.by_user()

        got = await self.call("Listing users", load)
        if got is None:
            return
        users, logins = got
        now = now_us()
        self.table.clear()
        with self.table:
            with ui.row().classes("w-full gap-3 font-semibold border-b border-gray-400 py-1 text-sm"):
                for title, width in (("User", "w-40"), ("Roles", "w-64"), ("Account", "w-24"),
                                     ("Login back-off", "w-40"), ("Last login", "w-56")):
                    ui.label(title).classes(f"{width} shrink-0")
            for u in users:
                self._row(u, logins.get(u.name), now)
        if self.selected is not None:
            await self.show_user(self.selected)
        await self.displays.render()

    def _row(self, u: User, logins: Any, now: int) -> None:
        blocked = logins is not None and logins.blocked_until_us > now
        backoff = ("blocked" if blocked else f"{logins.failures} failure(s)") if logins and (
            blocked or logins.failures) else "—"
        last = local_time(logins.last_login_us, self.tz, True) if logins and logins.last_login_us else "—"
        with ui.row().classes("w-full gap-3 items-center border-b border-gray-300 py-1 text-sm flex-wrap").props(
                f'data-user="{u.name}" data-disabled="{str(u.disabled).lower()}"'):
            ui.label(u.name).classes("w-40 shrink-0 font-semibold")
            ui.label(roles_text(u.roles) or "no role").classes("w-64 shrink-0")
            ui.label("disabled" if u.disabled else "enabled").classes("w-24 shrink-0")
            ui.label(backoff).classes("w-40 shrink-0")
            ui.label(last).classes("w-56 shrink-0")
            ui.button("Manage", on_click=lambda n=u.name: self.show_user(n)).props(
                f'{BUTTON} data-testid="manage"').classes("pl-touch")

    # -- one user ----------------------------------------------------------------------------------
    async def show_user(self, name: str) -> None:
        got = await self.call(f"User {name}", lambda: (self.auth.user(name), self.auth.tokens(name)))
        if got is None:
            self.selected = None
            self.detail.set_visibility(False)
            return
        user, tokens = got
        self.selected = user.name
        self.detail.clear()
        self.detail.set_visibility(True)
        self.detail.props(f'data-user="{user.name}"')
        with self.detail:
            self._user_actions(user)
            self._tokens(user, tokens)

    def _user_actions(self, user: User) -> None:
        with ui.row().classes("items-center gap-3 w-full flex-wrap"):
            ui.label(f"User {user.name}").classes("text-lg font-semibold")
            ui.label("disabled" if user.disabled else "enabled").props('data-testid="user-state"')
        with ui.row().classes("items-end gap-3 w-full flex-wrap"):
            roles = ui.input("Roles (SITE=ROLE, ...)", value=roles_text(user.roles)).props(
                'outlined dense data-testid="edit-roles"').classes("min-w-[260px]")
            self._button("Save roles", "save-roles", lambda: self.set_roles(user.name, roles.value or ""))
            if user.disabled:
                self._button("Enable", "enable", lambda: self.set_disabled(user.name, False))
            else:
                self._button("Disable", "disable", lambda: self.set_disabled(user.name, True))
            self._button("Reset password", "reset-password", lambda: self.reset_password(user.name))
            self._button("Unlock", "unlock", lambda: self.unlock(user.name))

    def _button(self, label: str, testid: str, action: Callable[[], Any]) -> None:
        ui.button(label, on_click=action).props(f'{BUTTON} data-testid="{testid}"').classes("pl-touch")

    def _tokens(self, user: User, tokens: list[TokenInfo]) -> None:
        now = now_us()
        ui.label("API tokens").classes("font-semibold mt-3")
        with ui.column().classes("w-full gap-0").props('data-testid="tokens"'):
            if not tokens:
                ui.label(f"{user.name} has no API token.").classes("pl-muted")
            for t in tokens:
                state = token_state(t, now)
                with ui.row().classes("w-full gap-3 items-center border-b border-gray-300 py-1 text-sm "
                                      "flex-wrap").props(f'data-token="{t.id}" data-state="{state}"'):
                    ui.label(t.name).classes("w-40 shrink-0 font-semibold")
                    ui.label(roles_text(t.roles)).classes("w-48 shrink-0")
                    ui.label(state).classes("w-20 shrink-0")
                    ui.label(f"expires {local_time(t.expires_us, self.tz, True)}").classes("w-64 shrink-0")
                    ui.label(f"last used {local_time(t.last_used_us, self.tz, True)}").classes("w-64 shrink-0")
                    if state == "active":
                        self._button("Revoke", "revoke", partial(self.revoke, t.id))
        with ui.row().classes("items-end gap-3 w-full flex-wrap"):
            name = ui.input("Token name (what it is for)").props('outlined dense data-testid="token-name"')
            roles = ui.input("Roles (empty: the user's)").props(
                'outlined dense data-testid="token-roles"').classes("min-w-[220px]")
            days = ui.number("Days", value=self.auth.settings.token_default_days, min=1,
                             max=self.auth.settings.token_max_days).props('outlined dense data-testid="token-days"')
            self._button("Create token", "create-token",
                         lambda: self.create_token(user.name, name.value or "", roles.value or "", days.value))

    # -- actions -----------------------------------------------------------------------------------
    async def create_user(self) -> None:
        name, text = (self.new_name.value or "").strip(), self.new_roles.value or ""

        def create() -> tuple[User, str | None]:
            return self.auth.create_user(name, parse_roles_text(text), actor=self.principal.name)

        made = await self.call("Creating the user", create)
        if made is None:
            return
        user, password = made
        self.new_name.set_value("")
        self.new_roles.set_value("")
        self.selected = user.name
        await self.render()
        if password is not None:
            self.show_secret(f"Password of {user.name}", password)

    async def set_roles(self, name: str, text: str) -> None:
        done = await self.call("Changing roles", lambda: self.auth.set_roles(
            name, parse_roles_text(text), actor=self.principal.name))
        if done is not None:
            await self.render()

    async def set_disabled(self, name: str, disabled: bool) -> None:
        if disabled and name == self.principal.name:
            self.error.set_text("You cannot disable yourself here (another administrator can).")
            return
        if await self.call("Disabling" if disabled else "Enabling", self.auth.set_disabled, name, disabled,
                           self.principal.name) is not None:
            await self.render()

    async def reset_password(self, name: str) -> None:
        password = await self.call("Resetting the password", self.auth.reset_password, name, self.principal.name)
        if password is not None:
            await self.render()
            self.show_secret(f"New password of {name}", password)

    async def unlock(self, name: str) -> None:
        cleared = await self.call("Unlocking", self.auth.unlock, name, self.principal.name)
        if cleared is not None:
            ui.notify(f"{name}: {cleared} login back-off record(s) cleared")
            await self.render()

    async def create_token(self, user: str, name: str, text: str, days: float | None) -> None:
        def create() -> Any:
            roles = parse_roles_text(text) if text.strip() else None
            return self.auth.create_token(user, name, roles, actor=self.principal.name, days=days,
                                          actor_roles=dict(self.principal.roles))

        made = await self.call("Creating the token", create)
        if made is not None:
            await self.render()
            self.show_secret(f"Token {made.info.name} of {user}", made.secret)

    async def revoke(self, token_id: str) -> None:
        if await self.call("Revoking the token", self.auth.revoke_token, token_id, self.principal.name) is not None:
            await self.render()
