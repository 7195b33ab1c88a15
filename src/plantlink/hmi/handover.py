"""The line page's handover panel: the current shift's notes and the previous shift's (who wrote them, when, in
the site's zone); operators and above write (append-only: a correction is a new note). Calls
``services.handover`` only."""

from __future__ import annotations

import asyncio

from nicegui import ui

from plantlink.errors import PlantlinkError
from plantlink.hmi.data import LineView
from plantlink.hmi.widgets import Hmi, local_time, zone_note
from plantlink.identity import Principal
from plantlink.services.handover import MAX_TEXT, Board, Note


async def handover_panel(h: Hmi, who: Principal, ln: LineView) -> None:
    with ui.element("div").classes("pl-panel min-w-0").props('data-testid="handover"'):
        ui.label("Shift handover").classes("text-lg font-semibold")
        body = ui.column().classes("w-full gap-1")
        error = ui.label("").classes("font-bold text-red-800").props('role=alert data-testid="handover-error"')

        async def show() -> None:
            board = await asyncio.to_thread(h.services.handover.board, who, ln.path)
            body.clear()
            with body:
                _board(board)

        await show()
        if not who.can(ln.site, "operator"):
            return
        text = ui.textarea("Note for the next shift").props(
            f'outlined autogrow maxlength={MAX_TEXT} data-testid="handover-text"').classes("w-full")

        async def add() -> None:
            error.set_text("")
            try:
                await asyncio.to_thread(h.services.handover.write, who, ln.path, text.value or "")
            except PlantlinkError as exc:
                error.set_text(f"The note was not saved: {exc}")
                return
            text.set_value("")
            await show()

        ui.button("Add note", on_click=add).props('unelevated no-caps color=blue-grey-8 data-testid="handover-add"'
                                                  ).classes("pl-touch")


def _board(board: Board) -> None:
    ui.label(zone_note(board.timezone)).classes("pl-muted text-xs")
    for title, shift, notes in (("This shift", board.current, board.current_notes),
                                ("Previous shift", board.previous, board.previous_notes)):
        ui.label(f"{title}: {shift.name}, from {local_time(shift.start_us, board.timezone, True)}").classes(
            "font-semibold mt-2")
        if not notes:
            ui.label("No note.").classes("pl-muted")
        for n in notes:
            _note(n, board.timezone)


def _note(n: Note, tz: str) -> None:
    with ui.element("div").classes("border-l-4 border-gray-400 pl-2").props(
            f'data-testid="handover-note" data-note="{n.id}" data-author="{n.author}"'):
        fixed = f" (corrects note {n.replaces})" if n.replaces is not None else ""
        ui.label(f"{n.author}, {local_time(n.ts_us, tz, True)}{fixed}").classes("text-sm pl-muted")
        ui.label(n.text).classes("whitespace-pre-wrap")
