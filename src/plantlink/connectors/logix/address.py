"""Logix tag names as Studio 5000 writes them, checked by a small pure parser (no pylogix import).

``Speed`` (a controller tag), ``Program:Line1.Speed`` (a program tag), ``Counts[3]`` / ``Grid[1,2]`` (array
elements), ``Motor.Status.Running`` (structure / UDT members by dotted path), ``Recipe[2].Name`` (mixed).
Each name segment is 1..40 letters, digits and underscores, starting with a letter or an underscore (the
Logix rule). Types: BOOL, SINT, INT, DINT, LINT, USINT, UINT, UDINT, ULINT, REAL, LREAL and STRING.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: CIP type code of each atomic Logix type (what the controller's Read Tag reply starts with).
TYPE_CODES: dict[str, int] = {
    "BOOL": 0xC1, "SINT": 0xC2, "INT": 0xC3, "DINT": 0xC4, "LINT": 0xC5,
    "USINT": 0xC6, "UINT": 0xC7, "UDINT": 0xC8, "ULINT": 0xC9, "REAL": 0xCA, "LREAL": 0xCB,
}
#: Type code of a structure (a STRING is one, with the structure handle ``STRING_HANDLE``).
STRUCT_CODE = 0xA0
STRING_HANDLE = 0x0FCE
TYPES = (*TYPE_CODES, "STRING")
NAMES = {code: name for name, code in TYPE_CODES.items()}
#: (lowest, highest) of each integer type.
RANGES: dict[str, tuple[int, int]] = {
    "SINT": (-(2**7), 2**7 - 1), "INT": (-(2**15), 2**15 - 1), "DINT": (-(2**31), 2**31 - 1),
    "LINT": (-(2**63), 2**63 - 1), "USINT": (0, 2**8 - 1), "UINT": (0, 2**16 - 1), "UDINT": (0, 2**32 - 1),
    "ULINT": (0, 2**64 - 1),
}
EXPECTED = "expected a Logix tag name like Speed, Program:Main.Speed, Counts[3], Grid[1,2] or Motor.Status.Running"

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,39})(?:\[(\d+(?:,\d+){0,2})\])?")
_PROGRAM = re.compile(r"Program:([A-Za-z_][A-Za-z0-9_]{0,39})\.(.+)", re.IGNORECASE)
_BIT = re.compile(r"\d{1,2}")


@dataclass(frozen=True)
class LogixTag:
    """A parsed tag name: its program (None for a controller tag), the segments and each one's indices."""

    name: str
    program: str | None
    segments: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def base(self) -> str:
        """The tag the name starts at (with its program): what a tag-list upload lists."""
        first = self.segments[0][0]
        return f"Program:{self.program}.{first}" if self.program else first


def parse_tag(text: str) -> LogixTag:
    """Parse ``text`` or raise ValueError saying what was expected."""
    s = text.strip()
    if not s:
        raise ValueError(f"empty tag name: {EXPECTED}")
    program = None
    m = _PROGRAM.fullmatch(s)
    if m:
        program, rest = m.group(1), m.group(2)
    elif s.lower().startswith("program:"):
        raise ValueError(f"{text!r}: a program tag is Program:<program>.<tag>, e.g. Program:MainProgram.Speed")
    else:
        rest = s
    segments: list[tuple[str, tuple[int, ...]]] = []
    for k, part in enumerate(rest.split(".")):
        if k > 0 and _BIT.fullmatch(part):
            segments.append((part, ()))  # a bit of an integer: Status.3
            continue
        sm = _SEGMENT.fullmatch(part)
        if not sm:
            raise ValueError(f"{text!r}: {part!r} is not a tag or member name ({EXPECTED})")
        index = tuple(int(i) for i in sm.group(2).split(",")) if sm.group(2) else ()
        segments.append((sm.group(1), index))
    return LogixTag(s, program, tuple(segments))


def parse_type(text: str) -> str:
    t = text.strip().upper()
    if t not in TYPES:
        raise ValueError(f"unknown Logix type {text!r}: expected one of {', '.join(TYPES)}")
    return t
