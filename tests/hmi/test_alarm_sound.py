"""The audible alert's state (no audio in a headless browser): off by default, on only from what localStorage
holds, sounding for a new unacknowledged critical/high alarm, never for those shown when the page opened."""

from __future__ import annotations

from dataclasses import replace

from plantlink.hmi.alarmsound import TONE_JS, AlertState
from plantlink.services.alarms import AlarmView

BASE = AlarmView(key="s/a/l/m/t:hihi", name="hihi", tag="s/a/l/m/t", site="s", machine="s/a/l/m", type="hihi",
                 priority="critical", state="unack_active", active=True, since_us=1, activated_us=1,
                 shelved_until_us=None, shelve_reason=None, message="", response="")


def test_off_by_default_and_on_only_from_a_stored_one() -> None:
    s = AlertState()
    assert not s.enabled and s.stored() == "0"
    assert not s.set(None) and not s.set("0") and not s.set("true")
    assert s.set("1") and s.stored() == "1"


def test_sounds_for_a_new_unacknowledged_critical_or_high_alarm_only() -> None:
    s = AlertState()
    s.set("1")
    assert not s.look([BASE])  # shown when the page opened
    assert not s.look([BASE])  # still the same one
    assert s.look([BASE, replace(BASE, key="k2", priority="high")])
    assert not s.look([BASE, replace(BASE, key="k3", priority="medium")])
    assert not s.look([BASE, replace(BASE, key="k4", state="ack_active")])
    assert s.look([BASE, replace(BASE, key="k5", state="rtn_unack")])


def test_silent_while_switched_off() -> None:
    s = AlertState()
    s.look([])
    assert not s.look([BASE])
    s.set("1")
    assert not s.look([BASE])  # already seen while off


def test_the_tone_is_made_in_the_browser_without_a_file() -> None:
    assert "createOscillator" in TONE_JS and "http" not in TONE_JS and ".mp3" not in TONE_JS
