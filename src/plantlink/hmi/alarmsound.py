"""The optional audible alert of the alarm summary: off by default; a switch on the page, kept in the browser's
localStorage (each operator station decides); a short tone made with the Web Audio API (no sound file) when a
new unacknowledged critical or high alarm appears while the page is open. Alarms already shown when the page
opens do not sound."""

from __future__ import annotations

import json
from collections.abc import Iterable

from nicegui import ui

from plantlink.services.alarms import UNACKNOWLEDGED, AlarmView

STORAGE_KEY = "plantlink.alarmSound"
LOUD = ("critical", "high")
#: A 0.4 s tone at 880 Hz, fading out (the page has had a click: the browser lets it play).
TONE_JS = (
    "(() => { const C = window.AudioContext || window.webkitAudioContext; if (!C) return;"
    " const ctx = window.plAlarmAudio || (window.plAlarmAudio = new C()); ctx.resume();"
    " const o = ctx.createOscillator(), g = ctx.createGain(), t = ctx.currentTime;"
    " o.type = 'sine'; o.frequency.value = 880; g.gain.setValueAtTime(0.2, t);"
    " g.gain.exponentialRampToValueAtTime(0.001, t + 0.4); o.connect(g).connect(ctx.destination);"
    " o.start(t); o.stop(t + 0.4); })()")


class AlertState:
    """Whether to sound (no browser here: what ``AlarmSound`` decides, testable alone)."""

    def __init__(self) -> None:
        self.enabled = False
        self.seen: set[str] | None = None  # None: nothing looked at yet

    def set(self, stored: object) -> bool:
        """The switch from what localStorage holds ("1": on; anything else, or nothing: off)."""
        self.enabled = stored == "1"
        return self.enabled

    def stored(self) -> str:
        return "1" if self.enabled else "0"

    def look(self, alarms: Iterable[AlarmView]) -> bool:
        """Note the unacknowledged critical/high alarms shown; True to sound: one is new and the switch is on."""
        loud = {a.key for a in alarms if a.priority in LOUD and a.state in UNACKNOWLEDGED}
        new = self.seen is not None and bool(loud - self.seen)
        self.seen = loud  # one acknowledged and back later sounds again
        return new and self.enabled


class AlarmSound:
    """The switch on the page; ``look`` after each redraw of the summary."""

    def __init__(self) -> None:
        self.state = AlertState()

    def build(self) -> None:
        self.switch = ui.switch("Sound on new critical/high alarms", value=False,
                                on_change=lambda e: self._changed(bool(e.value))).props(
            'data-testid="alarm-sound"').classes("pl-touch")
        ui.timer(0.1, self._restore, once=True)  # runs once the browser is connected

    async def _restore(self) -> None:
        stored = await ui.run_javascript(f"localStorage.getItem({json.dumps(STORAGE_KEY)})")
        self.switch.set_value(self.state.set(stored))

    def _changed(self, on: bool) -> None:
        self.state.enabled = on
        ui.run_javascript(f"localStorage.setItem({json.dumps(STORAGE_KEY)}, {json.dumps(self.state.stored())})")

    def look(self, alarms: Iterable[AlarmView]) -> None:
        if self.state.look(alarms):
            ui.run_javascript(TONE_JS)
