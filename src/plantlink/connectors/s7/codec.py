"""Decoding of S7 read buffers (big-endian, vectorised per type) and encoding of written values."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from plantlink.connectors.s7.address import S7Address
from plantlink.errors import PointError

#: numpy dtype of each numeric S7 type (S7 is big-endian).
DTYPES: dict[str, str] = {
    "BYTE": ">u1", "USINT": ">u1", "SINT": ">i1", "INT": ">i2", "UINT": ">u2", "WORD": ">u2",
    "DINT": ">i4", "UDINT": ">u4", "DWORD": ">u4", "REAL": ">f4", "LREAL": ">f8",
}
TEXT = ("STRING", "CHAR")


class Decoder:
    """Decodes the numeric and text points found at ``offsets`` of one buffer."""

    def __init__(self, locs: Sequence[S7Address], offsets: Sequence[int]):
        self.text_rows = [j for j, a in enumerate(locs) if a.type in TEXT]
        self.num_rows = [j for j, a in enumerate(locs) if a.type not in TEXT]
        self._groups: list[tuple[np.ndarray, np.ndarray, str]] = []  # (result rows, byte index matrix, dtype)
        by_type: dict[str, list[int]] = {}
        for k, j in enumerate(self.num_rows):
            by_type.setdefault(locs[j].type, []).append(k)
        bits: list[int] = []
        for name, rows in by_type.items():
            if name == "BOOL":
                bits = rows
                continue
            dt = np.dtype(DTYPES[name])
            starts = np.array([offsets[self.num_rows[k]] for k in rows], dtype=np.intp)
            self._groups.append((np.array(rows, dtype=np.intp),
                                 starts[:, None] + np.arange(dt.itemsize, dtype=np.intp), DTYPES[name]))
        self._bit_rows = np.array(bits, dtype=np.intp)
        self._bit_at = np.array([offsets[self.num_rows[k]] for k in bits], dtype=np.intp)
        self._bit_no = np.array([locs[self.num_rows[k]].bit or 0 for k in bits], dtype=np.uint8)
        self._text = [(offsets[j], locs[j]) for j in self.text_rows]

    def decode(self, buf: np.ndarray) -> np.ndarray:
        """Values of the numeric points (in ``num_rows`` order) from the uint8 buffer ``buf``, as float64."""
        out = np.empty(len(self.num_rows), dtype=np.float64)
        for rows, at, dtype in self._groups:
            out[rows] = np.ascontiguousarray(buf[at]).view(dtype).ravel()
        if len(self._bit_rows):
            out[self._bit_rows] = (buf[self._bit_at] >> self._bit_no) & 1
        return out

    def strings(self, buf: np.ndarray) -> list[str]:
        """Values of the text points (in ``text_rows`` order)."""
        out = []
        for at, loc in self._text:
            if loc.type == "CHAR":
                out.append(bytes(buf[at:at + 1]).decode("latin-1"))
                continue
            n = min(int(buf[at + 1]), int(buf[at]), loc.length or 254)
            out.append(bytes(buf[at + 2:at + 2 + n]).decode("latin-1"))
        return out


_STRUCT = {"BYTE": ">B", "USINT": ">B", "SINT": ">b", "INT": ">h", "UINT": ">H", "WORD": ">H", "DINT": ">i",
           "UDINT": ">I", "DWORD": ">I", "REAL": ">f", "LREAL": ">d"}


def encode(loc: S7Address, value: object, path: str) -> bytes:
    """The bytes ``value`` is written as at ``loc`` (not for BOOL: a bit is merged into its byte)."""
    if loc.type == "STRING":
        raw = str(value).encode("latin-1", errors="replace")
        n = loc.length or 254
        if len(raw) > n:
            raise PointError(f"{path}: {len(raw)} characters do not fit STRING[{n}]")
        return bytes([n, len(raw)]) + raw.ljust(n, b"\0")
    if loc.type == "CHAR":
        raw = str(value).encode("latin-1", errors="replace")
        if len(raw) != 1:
            raise PointError(f"{path}: a CHAR takes exactly one character, not {len(raw)}")
        return raw
    fmt = _STRUCT[loc.type]
    try:
        if loc.type in ("REAL", "LREAL"):
            return struct.pack(fmt, float(value))  # type: ignore[arg-type]
        f = float(value)  # type: ignore[arg-type]
        if f != round(f):
            raise PointError(f"{path}: {value!r} is not a whole number ({loc.type})")
        return struct.pack(fmt, round(f))
    except struct.error as exc:
        raise PointError(f"{path}: {value!r} is out of range for {loc.type}") from exc
