"""Pure pieces of the shop floor and of "words, not internals", without a browser: the wallboard's rotation
bounds, the contrast of its dark look (WCAG 2 formula, computed here), and a control request in words."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from plantlink.control.records import Staged
from plantlink.hmi import theme
from plantlink.hmi.approvals import request_text
from plantlink.hmi.data import TagView
from plantlink.hmi.wall import rotate_of


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/hmi/wall/x", "query_string": query.encode(),
                    "headers": []})


@pytest.mark.parametrize(("query", "expected"), [("", 20), ("rotate=5", 5), ("rotate=600", 600)])
def test_rotation_within_bounds(query: str, expected: int) -> None:
    assert rotate_of(_request(query)) == expected


@pytest.mark.parametrize("raw", ["4", "601", "0", "-5", "ten", "2.5", ""])
def test_rotation_out_of_bounds_is_refused_with_why(raw: str) -> None:
    said = rotate_of(_request(f"rotate={raw}"))
    assert isinstance(said, str) and "from 5 to 600" in said and repr(raw) in said


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("state", [*theme.STATE_LOOK, None])
def test_every_wall_tile_is_readable_from_afar(state: str | None) -> None:
    """Text on every tile at least 4.5:1 (WCAG AA); running stays dark (no colour for normal, ISA-101)."""
    look = theme.wall_look(state)
    assert _contrast(look.background, look.text) >= 4.5, (state, look)
    assert _contrast(theme.WALL_BG, theme.WALL_TEXT) >= 7
    if state == "running":
        assert _luminance(look.background) < 0.05


def test_a_control_request_reads_in_words() -> None:
    tag = TagView("s/a/l/oven/zone1_setpoint", "zone1_setpoint", "degC", "float", 1, True,
                  label="Oven zone 1 setpoint", decimals=0)
    staged = Staged("x", tag.path, "s", "erin", 180.0, 190.0, "degC", {"max": 230}, "engineer", True, [], 0.0, 1.0)
    assert request_text(staged, tag) == "erin asks to set Oven zone 1 setpoint from 180 °C to 190 °C (max 230)"
    run = TagView("s/a/l/conv/run_command", "run_command", "", "bool", 2, True, label="Conveyor",
                  texts={0: "Stop", 1: "Run"})
    staged = Staged("y", run.path, "s", "olga", False, True, "", {}, "operator", False, [], 0.0, 1.0)
    assert request_text(staged, run) == "olga asks to set Conveyor from Stop to Run"


def test_the_walls_energy_per_part_reads_from_afar() -> None:
    from plantlink.hmi.wall import per_part_text

    assert [per_part_text(v) for v in (None, float("nan"), 0.0, 0.0452, 0.9996, 1.0, 12.345)] == [
        "— kWh", "— kWh", "0.0 Wh", "45.2 Wh", "999.6 Wh", "1.00 kWh", "12.35 kWh"]
