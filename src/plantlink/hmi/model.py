"""The plant model page (engineers at every site): the running model's digest; a changed model YAML uploaded
or pasted, its plan (the text ``plantlink plan`` prints, a history loss in red), "allow history loss" when the
plan loses history, and the apply, with its result (applied, or refused with the reasons; a model that fails
validation lists every problem with its line). It calls the model service only (``services.model``), the one
``plantlink apply`` and the API use: validated, audited, the changed devices' connectors restarted only."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import Response
from nicegui import events, ui

from plantlink.errors import ConfigError, PlantlinkError
from plantlink.hmi.widgets import Hmi, can_change_model, forbidden, hmi, open_page
from plantlink.identity import Principal
from plantlink.model.diff import Plan
from plantlink.model.plan_text import render
from plantlink.services.model import MODEL_ROLE

#: the lines of a plan that say history is lost (shown in red, as on a terminal)
LOSS_MARKS = ("LOST", "History loss")
RED = "color: #b71c1c; font-weight: 600"
MAX_UPLOAD = 1024 * 1024  # the HTTP body limit of the routes other than the model API


async def model_page(request: Request) -> Response | None:
    opened = open_page(request, "Plant model", _gate)
    if isinstance(opened, Response):
        return opened
    _, principal = opened
    if not hmi().services.model.running:  # plantlink serve: no running model to plan against or apply to
        with ui.element("div").classes("pl-panel w-full"):
            ui.label("Plant model").classes("text-lg font-semibold")
            ui.label("This server only serves the API and HMI (plantlink serve): plan and apply a changed model "
                     "on the server that runs the plant (plantlink run).").props('data-testid="model-unavailable"')
        return None
    ModelView(principal).build()
    return None


def _gate(h: Hmi, principal: Principal) -> Response | None:
    if not can_change_model(h, principal):
        return forbidden(f"changing the plant model needs the {MODEL_ROLE} role at every site")
    return None


class ModelView:
    def __init__(self, principal: Principal):
        self.principal = principal
        self.plan: Plan | None = None
        self.planned_text = ""
        self.file = "plant.yaml"

    def build(self) -> None:
        with ui.element("div").classes("pl-panel w-full"):
            ui.label("Plant model").classes("text-lg font-semibold")
            self.digest = ui.label("").props('data-testid="model-digest"')
            self._show_running()
            ui.label("Upload the changed model, or paste it below; then plan, read the plan, and apply it. "
                     "Nothing changes until you apply.").classes("pl-muted")
            ui.upload(label="Model file (.yaml)", auto_upload=True, max_file_size=MAX_UPLOAD,
                      on_upload=self._uploaded).props('accept=".yaml,.yml" data-testid="model-upload"')
            self.text = ui.textarea("Model YAML").props(
                'outlined autogrow data-testid="model-yaml" spellcheck=false').classes("w-full font-mono")
            with ui.row().classes("items-center gap-3"):
                ui.button("Plan", on_click=self.do_plan).props(
                    'unelevated no-caps color=blue-grey-8 data-testid="model-plan"').classes("pl-touch")
                self.allow = ui.checkbox("Allow history loss").props('data-testid="model-allow-loss"')
                self.allow.set_visibility(False)
                self.apply_button = ui.button("Apply", on_click=self.do_apply).props(
                    'unelevated no-caps color=deep-orange-9 data-testid="model-apply"').classes("pl-touch")
                self.apply_button.set_visibility(False)
            self.result = ui.column().classes("w-full gap-1").props('data-testid="model-result"')
            self.plan_box = ui.column().classes("w-full gap-0 font-mono text-sm").props('data-testid="model-plan-text"')

    def _show_running(self) -> None:
        info = hmi().services.model.info()
        self.digest.set_text(f"Running model {info.digest} ({info.file}: {info.devices} devices, {info.tags} tags)")

    async def _uploaded(self, e: events.UploadEventArguments) -> None:
        raw = await e.file.read()
        self.file = e.file.name or self.file
        try:
            self.text.set_value(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self._say([f"{self.file} is not UTF-8 text: upload the model's YAML file"], bad=True)
            return
        await self.do_plan()

    def _say(self, lines: list[str], *, bad: bool) -> None:
        self.result.clear()
        with self.result:
            for i, line in enumerate(lines):
                ui.label(line).style(RED if bad and i == 0 else "").props(
                    f'data-testid="model-message" data-outcome="{"refused" if bad else "ok"}"')

    def _forget_plan(self) -> None:
        self.plan = None
        self.plan_box.clear()
        self.allow.set_visibility(False)
        self.apply_button.set_visibility(False)

    async def do_plan(self) -> None:
        text = self.text.value or ""
        self._forget_plan()
        try:
            plan = await asyncio.to_thread(hmi().services.model.plan, self.principal, text, self.file)
        except ConfigError as exc:
            self._say(["The model is not valid: nothing changes.", *(str(p) for p in exc.problems)], bad=True)
            return
        except PlantlinkError as exc:
            self._say([f"Refused: {exc}"], bad=True)
            return
        self.plan, self.planned_text = plan, text
        self._show_plan(plan)
        if plan.empty:
            self._say(["No changes: this model is the one running."], bad=False)
            return
        self._say([f"Plan made against {plan.digest_before}: read it, then apply."], bad=False)
        self.allow.set_value(False)
        self.allow.set_visibility(bool(plan.history_loss))
        self.apply_button.set_visibility(True)

    def _show_plan(self, plan: Plan) -> None:
        self.plan_box.clear()
        with self.plan_box:
            for line in render(plan.to_dict()).splitlines():
                lost = any(mark in line for mark in LOSS_MARKS)
                ui.label(line or "\u00a0").style("white-space: pre" + ("; " + RED if lost else "")).props(
                    f'data-loss="{"yes" if lost else "no"}"')

    async def do_apply(self) -> None:
        plan = self.plan
        if plan is None or (self.text.value or "") != self.planned_text:
            self._forget_plan()
            self._say(["The model changed since the plan: plan it again."], bad=True)
            return
        self.apply_button.disable()
        try:
            done = await hmi().services.model.apply(self.principal, self.planned_text, self.file,
                                                    allow_history_loss=bool(self.allow.value),
                                                    expect=plan.digest_before)
        except ConfigError as exc:
            self._say(["The model is not valid: nothing changed.", *(str(p) for p in exc.problems)], bad=True)
            return
        except PlantlinkError as exc:
            self._say([f"Refused: {exc}", "Nothing changed: the running model keeps running."], bad=True)
            return
        finally:
            self.apply_button.enable()
        self._forget_plan()
        self._show_running()
        if done.applied:
            devices = ", ".join(done.plan.devices) or "none"
            self._say([f"Applied in {done.seconds:.1f} s: {len(done.plan.changes)} change(s), now "
                       f"{done.plan.digest_after}. Connectors restarted: {devices}."], bad=False)
        else:
            self._say(["Nothing to apply: this model is the one running."], bad=False)
