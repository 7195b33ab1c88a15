"""Logix tag names and types: every addressing form parsed to its parts, and malformed ones refused with what
was expected; the value checks of writes."""

from __future__ import annotations

import pytest

from plantlink.connectors.logix.address import parse_tag, parse_type
from plantlink.connectors.logix.codec import encode, mismatch, plc_type
from plantlink.errors import PointError


@pytest.mark.parametrize(("text", "program", "segments", "base"), [
    ("Speed", None, (("Speed", ()),), "Speed"),
    ("Program:Main.Speed", "Main", (("Speed", ()),), "Program:Main.Speed"),
    ("Counts[3]", None, (("Counts", (3,)),), "Counts"),
    ("Grid[1,2,3]", None, (("Grid", (1, 2, 3)),), "Grid"),
    ("Motor.Status.Running", None, (("Motor", ()), ("Status", ()), ("Running", ())), "Motor"),
    ("Recipe[2].Name", None, (("Recipe", (2,)), ("Name", ())), "Recipe"),
    ("StatusWord.3", None, (("StatusWord", ()), ("3", ())), "StatusWord"),
    ("program:Line_1.Cnt[0]", "Line_1", (("Cnt", (0,)),), "Program:Line_1.Cnt"),
])
def test_every_form_parses(text: str, program: str | None, segments: tuple[object, ...], base: str) -> None:
    tag = parse_tag(text)
    assert (tag.program, tag.segments, tag.base) == (program, segments, base)


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"),
    ("Bad Name", "not a tag or member name"),
    ("1Speed", "not a tag or member name"),
    ("Program:Main", "Program:<program>.<tag>"),
    ("Counts[1,2,3,4]", "not a tag or member name"),
    ("A" * 41, "not a tag or member name"),
    ("Motor..Speed", "not a tag or member name"),
])
def test_malformed_names_say_what_was_expected(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_tag(text)


def test_types() -> None:
    assert parse_type(" lreal ") == "LREAL"
    with pytest.raises(ValueError, match="expected one of BOOL"):
        parse_type("FLOAT")


def test_reply_types_and_mismatches() -> None:
    assert plc_type(0xC4, 5) == "DINT" and plc_type(0xA0, "x") == "STRING" and plc_type(0xA0, b"") == "a structure"
    assert mismatch("T", "DINT", "DINT", 5) is None
    assert mismatch("T", None, "REAL", 1.5) is None
    assert mismatch("T", "REAL", "DINT", 5) == "tag T is DINT in the controller, not REAL as configured"
    assert mismatch("T", None, "a structure", b"\0") == ("tag T is a structure in the controller: not a number "
                                                          "(set the point's type)")


def test_write_values_are_checked_against_the_type() -> None:
    assert encode("SINT", 127.0, "p") == 127 and encode("REAL", 1, "p") == 1.0 and encode("BOOL", 0, "p") is False
    with pytest.raises(PointError, match=r"out of range for SINT \(-128..127\)"):
        encode("SINT", 128, "p")
    with pytest.raises(PointError, match="not a whole number"):
        encode("DINT", 1.5, "p")
    with pytest.raises(PointError, match="do not fit a STRING"):
        encode("STRING", "x" * 83, "p")
    with pytest.raises(PointError, match="not a finite number"):
        encode("LREAL", float("nan"), "p")
