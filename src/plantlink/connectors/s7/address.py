"""S7 addresses in the usual notation, parsed by a small pure parser (no snap7 import).

``DB10.DBX6.3`` (bit 3 of byte 6 of DB10), ``DB10.DBB2`` / ``DBW4`` / ``DBD8`` (a byte, word, double word),
``M5.1`` / ``MB5`` / ``MW20`` / ``MD24`` (flags), ``I0.0`` / ``IB0`` / ``IW2`` / ``ID4`` (inputs; ``E`` is
accepted for ``I``), ``Q0.1`` / ``QB0`` / ``QW2`` / ``QD4`` (outputs; ``A`` is accepted for ``Q``). Case does not
matter. The width letter fixes the size of 1-, 2- and 4-byte types; ``LREAL`` and ``STRING[n]`` start at a
byte address (``DB10.DBB20``, ``MB40``) and take their size from the type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Bytes each fixed-size type occupies.
SIZES: dict[str, int] = {
    "BOOL": 1, "BYTE": 1, "USINT": 1, "SINT": 1, "CHAR": 1,
    "INT": 2, "UINT": 2, "WORD": 2,
    "DINT": 4, "UDINT": 4, "DWORD": 4, "REAL": 4,
    "LREAL": 8,
}
#: The type an address means when the tag gives none, by width letter.
DEFAULT_TYPE = {"X": "BOOL", "B": "BYTE", "W": "INT", "D": "DINT"}
WIDTH = {"B": 1, "W": 2, "D": 4}
AREAS = ("DB", "M", "I", "Q")
EXPECTED = ("expected S7 notation like DB10.DBX6.3, DB10.DBW4, DB10.DBD8, M5.1, MW20, I0.0, IW2, Q0.1, QW2")

_DB = re.compile(r"DB(\d+)\.DB([XBWD])(\d+)(?:\.(\d+))?")
_AREA = re.compile(r"([MIQEA])([BWD]?)(\d+)(?:\.(\d+))?")
_STRING = re.compile(r"STRING\[(\d+)\]")
_ALIAS = {"E": "I", "A": "Q"}


@dataclass(frozen=True)
class S7Address:
    """Where a value lives: area (DB, M, I, Q), DB number (0 outside DBs), byte offset, bit, size, type."""

    area: str
    db: int
    start: int
    bit: int | None
    size: int
    type: str
    #: Characters of a STRING[n] (its bytes are n + 2: maximum and actual length first).
    length: int | None = None

    @property
    def end(self) -> int:
        return self.start + self.size

    def __str__(self) -> str:
        where = f"DB{self.db}" if self.area == "DB" else self.area
        bit = "" if self.bit is None else f".{self.bit}"
        return f"{where} byte {self.start}{bit} ({self.type}, {self.size} bytes)"


def parse_type(text: str) -> tuple[str, int | None]:
    """(type name, string length) of ``text``: one of SIZES or ``STRING[n]`` with 1 <= n <= 254."""
    t = text.strip().upper()
    m = _STRING.fullmatch(t)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= 254:
            raise ValueError(f"STRING[{n}]: the length must be 1..254")
        return "STRING", n
    if t == "STRING":
        return "STRING", 254
    if t not in SIZES:
        raise ValueError(f"unknown S7 type {text!r}: expected one of {', '.join(SIZES)}, STRING[n]")
    return t, None


def parse_address(text: str, type_: str | None = None) -> S7Address:
    """Parse ``text`` (and the optional ``type``) or raise ValueError saying what was expected."""
    s = text.strip().upper().replace(" ", "")
    m = _DB.fullmatch(s)
    if m:
        area, db, width, byte, bit = "DB", int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if db < 1 or db > 65535:
            raise ValueError(f"{text!r}: DB number {db} out of 1..65535")
    else:
        m = _AREA.fullmatch(s)
        if not m:
            raise ValueError(f"{text!r} is not an S7 address: {EXPECTED}")
        area, db, width, byte, bit = _ALIAS.get(m.group(1), m.group(1)), 0, m.group(2) or "X", int(m.group(3)), \
            m.group(4)
    if byte > 65535:
        raise ValueError(f"{text!r}: byte offset {byte} out of 0..65535")
    if width == "X":
        if bit is None:
            raise ValueError(f"{text!r}: a bit address needs its bit (.0 to .7), e.g. {text}.0")
        if int(bit) > 7:
            raise ValueError(f"{text!r}: bit {bit} out of 0..7")
    elif bit is not None:
        raise ValueError(f"{text!r}: only a bit address (DBX, or M/I/Q without width) takes a .bit")
    name, length = parse_type(type_) if type_ else (DEFAULT_TYPE[width], None)
    if width == "X" and name != "BOOL":
        raise ValueError(f"{text!r} is a bit: type must be BOOL, not {name}")
    if width != "X" and name == "BOOL":
        raise ValueError(f"{text!r}: type BOOL needs a bit address (e.g. DB1.DBX0.0, M0.0)")
    size = (length or 254) + 2 if name == "STRING" else SIZES[name]
    if name in ("LREAL", "STRING"):
        if width != "B":
            raise ValueError(f"{text!r}: {name} starts at a byte address (DBn.DBBo, MBo, IBo, QBo)")
    elif width != "X" and WIDTH[width] != size:
        raise ValueError(f"{text!r} addresses {WIDTH[width]} byte(s) but {name} has {size}")
    if byte + size > 65536:
        raise ValueError(f"{text!r}: {name} runs past byte 65535")
    return S7Address(area, db, byte, None if bit is None else int(bit), size, name, length)
