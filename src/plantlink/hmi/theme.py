"""ISA-101 look: grey for normal, colour only for abnormal; large touch targets.

Colours are plain hex strings so tests can compare them with the computed style of an element.
"""

from __future__ import annotations

from typing import NamedTuple

from plantlink.display import ALARM_STATE_TEXT


class Look(NamedTuple):
    background: str
    text: str
    label: str


#: Machine state -> tile look. Running is the normal state: grey, no colour.
STATE_LOOK: dict[str, Look] = {
    "running": Look("#d0d0d0", "#1a1a1a", "Running"),
    "idle": Look("#ece4b8", "#1a1a1a", "Idle"),
    "starved": Look("#f0a830", "#1a1a1a", "Starved"),
    "blocked": Look("#f0a830", "#1a1a1a", "Blocked"),
    "faulted": Look("#d32f2f", "#ffffff", "Faulted"),
    "planned_stop": Look("#8fa3b5", "#1a1a1a", "Planned stop"),
    "changeover": Look("#b3a9d6", "#1a1a1a", "Changeover"),
    "unknown": Look("#ffffff", "#5a5a5a", "No data"),
}
NO_STATE = "unknown"

#: Quality badge of a live value: good shows nothing (normal), the others are marked.
QUALITY_LOOK: dict[str, Look] = {
    "good": Look("transparent", "#1a1a1a", ""),
    "uncertain": Look("#f0a830", "#1a1a1a", "UNCERTAIN"),
    "bad": Look("#c2185b", "#ffffff", "BAD"),
    "none": Look("#ffffff", "#5a5a5a", "NO DATA"),
}

#: Alarm priority -> look (ISA-18.2 / ISA-101: these colours mean an alarm and nothing else).
PRIORITY_LOOK: dict[str, Look] = {
    "critical": Look("#d50000", "#ffffff", "Critical"),
    "high": Look("#ff6d00", "#1a1a1a", "High"),
    "medium": Look("#ffd600", "#1a1a1a", "Medium"),
    "low": Look("#00b8d4", "#1a1a1a", "Low"),
}
#: Alarm state -> label shown in the summary and the journal.
ALARM_STATE_LABEL: dict[str, str] = dict(ALARM_STATE_TEXT)

#: An OEE figure whose inputs are wrong (a ratio above 1): marked like a bad-quality value, it is a data problem.
DATA_PROBLEM = QUALITY_LOOK["bad"]

PAGE_BG = "#e6e6e6"
PANEL_BG = "#f4f4f4"
ACCENT = "#37474f"  # neutral dark blue-grey for links and the header
TREND_LINE = "#37474f"

CSS = f"""
body {{ background: {PAGE_BG}; color: #1a1a1a; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
.pl-panel {{ background: {PANEL_BG}; border: 1px solid #c4c4c4; border-radius: 6px; padding: 12px; }}
.pl-tile {{ min-width: 190px; min-height: 96px; border: 1px solid #9e9e9e; border-radius: 6px; padding: 10px 12px;
           cursor: pointer; text-decoration: none; display: block; }}
.pl-tile:focus, .pl-tile:hover {{ outline: 3px solid {ACCENT}; }}
.pl-tile .pl-name {{ font-size: 1.1rem; font-weight: 600; }}
.pl-tile .pl-state {{ font-size: 0.95rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }}
.pl-tile[data-state="unknown"] {{ border-style: dashed; }}
.pl-kpi {{ font-size: 0.9rem; }}
.pl-dataproblem {{ background: {DATA_PROBLEM.background}; color: {DATA_PROBLEM.text}; border-radius: 4px;
  padding: 0 4px; }}
.pl-big {{ font-size: 1.6rem; font-weight: 600; }}
.pl-muted {{ color: #5a5a5a; }}
.pl-touch {{ min-height: 48px; min-width: 48px; font-size: 1rem; }}
.pl-value {{ font-variant-numeric: tabular-nums; font-size: 1.15rem; }}
.pl-badge {{ border-radius: 4px; padding: 1px 6px; font-size: .75rem; font-weight: 700; }}
a.pl-link {{ color: {ACCENT}; font-weight: 600; }}
.pl-alarmbar {{ display: flex; gap: 6px; align-items: center; text-decoration: none; }}
.pl-count {{ border-radius: 4px; padding: 2px 8px; font-weight: 700; min-width: 2.2rem; text-align: center;
            border: 1px solid #ffffff55; display: inline-flex; gap: 4px; align-items: baseline; }}
.pl-count-label {{ font-weight: 400; font-size: .8em; }}
.pl-count[data-count="0"] {{ background: transparent !important; color: #ffffffaa !important; }}
.pl-marker {{ display: inline-block; border-radius: 4px; padding: 0 6px; font-size: .8rem; font-weight: 700;
             border: 1px solid #1a1a1a; margin-top: 4px; }}
"""


def state_look(state: str | None) -> Look:
    return STATE_LOOK.get(state or NO_STATE, STATE_LOOK[NO_STATE])


def tile_style(state: str | None) -> str:
    look = state_look(state)
    return f"background-color: {look.background}; color: {look.text};"


def quality_name(quality: int | None) -> str:
    """OPC UA style quality byte -> good / uncertain / bad / none."""
    if quality is None:
        return "none"
    if quality >= 192:
        return "good"
    return "uncertain" if quality >= 64 else "bad"


def priority_look(priority: str) -> Look:
    return PRIORITY_LOOK.get(priority, Look("#9e9e9e", "#1a1a1a", priority))


# -- wallboard (ISA-101 dark variant): dark grey for normal, the same state colours for abnormal ---------------
WALL_BG = "#121212"
WALL_TEXT = "#f0f0f0"
#: running (normal) on the wall: a dark tile, not the light grey of the desk pages
WALL_RUNNING = Look("#2b2b2b", "#f0f0f0", "Running")
WALL_NO_DATA = Look("#121212", "#b0b0b0", "No data")

WALL_CSS = f"""
body {{ background: {WALL_BG}; color: {WALL_TEXT}; font-family: system-ui, -apple-system, "Segoe UI", Roboto,
  sans-serif; cursor: none; }}
.pl-wall-title {{ font-size: 2.6rem; font-weight: 700; }}
.pl-wall-sub {{ font-size: 1.6rem; color: #c8c8c8; }}
.pl-wall-grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 16px;
  width: 100%; }}
.pl-wall-tile {{ border: 2px solid #5a5a5a; border-radius: 10px; padding: 16px 20px; min-height: 200px; }}
.pl-wall-tile[data-state="unknown"] {{ border-style: dashed; }}
.pl-wall-name {{ font-size: 2rem; font-weight: 700; }}
.pl-wall-state {{ font-size: 2.2rem; font-weight: 800; text-transform: uppercase; letter-spacing: .04em; }}
.pl-wall-figure {{ font-size: 1.7rem; font-variant-numeric: tabular-nums; }}
.pl-wall-alarms {{ font-size: 1.5rem; color: #b0b0b0; }}
.pl-wall-alarms-on {{ color: #1a1a1a; background: {PRIORITY_LOOK["high"].background}; border-radius: 6px;
  padding: 0 8px; font-weight: 800; display: inline-block; }}
.pl-wall-note {{ font-size: 1.5rem; color: #e0e0e0; border-left: 6px solid #5a5a5a; padding-left: 12px; }}
.pl-dataproblem {{ background: {DATA_PROBLEM.background}; color: {DATA_PROBLEM.text}; border-radius: 4px;
  padding: 0 4px; }}
"""


def wall_look(state: str | None) -> Look:
    if state in (None, NO_STATE) or state not in STATE_LOOK:
        return WALL_NO_DATA
    return WALL_RUNNING if state == "running" else STATE_LOOK[state]


def wall_tile_style(state: str | None) -> str:
    look = wall_look(state)
    return f"background-color: {look.background}; color: {look.text};"
