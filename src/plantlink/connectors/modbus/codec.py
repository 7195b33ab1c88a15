"""Register codec for Modbus: vectorised decoding of register blocks, per-value encoding for writes.

Orders, as configured on a ``ModbusPoint``:

* ``word_order``: ``big`` = the most significant register comes first (lowest address); ``little`` = the
  least significant register comes first. It matters only for values of two or more registers.
* ``byte_order``: ``big`` = within each register, the most significant byte is sent first (what the
  Modbus standard mandates); ``little`` = the two bytes of every register are swapped.

So a float32 whose big-endian bytes are ``A B C D`` sits in two registers as
``AB CD`` (big/big), ``CD AB`` (little/big), ``BA DC`` (big/little), ``DC BA`` (little/little).
A string of ``length`` registers follows the same rule as a number of that many registers: its first
character is the most significant byte; trailing NUL bytes are dropped.

A ``bool`` without ``bit`` is "register != 0"; with ``bit`` it is that bit (0 = least significant) of the
register's value after the byte order is applied. Engineering value = raw * ``scale`` + ``offset``
(``scale``/``offset`` do not apply to ``bool`` and ``string``).

Decoding is vectorised: ``RegisterDecoder`` groups points by (type, word order, byte order), precomputes
the register indices of each group and, per cycle, only gathers, byte-swaps and reinterprets arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from plantlink.connectors.modbus.config import REGISTERS, ModbusPoint
from plantlink.errors import PointError

#: numpy dtype (big-endian) of every numeric register type.
DTYPES: dict[str, np.dtype[Any]] = {
    "int16": np.dtype(">i2"),
    "uint16": np.dtype(">u2"),
    "int32": np.dtype(">i4"),
    "uint32": np.dtype(">u4"),
    "int64": np.dtype(">i8"),
    "float32": np.dtype(">f4"),
    "float64": np.dtype(">f8"),
}

_INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_FLOAT_MAX = {"float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


def _word_bytes(words: np.ndarray, word_order: str, byte_order: str) -> np.ndarray:
    """(k, n) register words -> (k, 2n) bytes of each value, most significant byte first."""
    if word_order == "little":
        words = words[:, ::-1]
    be = np.ascontiguousarray(words, dtype=">u2" if byte_order == "big" else "<u2")
    return be.view(np.uint8).reshape(words.shape[0], 2 * words.shape[1])


def decode_words(words: np.ndarray, type_: str, word_order: str = "big", byte_order: str = "big",
                 bit: int | None = None) -> np.ndarray:
    """Decode a (k, n) uint16 array (one row per value, registers in address order) into k raw values.

    Numeric types give their numpy type; ``bool`` gives 0/1 as uint8. Use ``decode_strings`` for strings.
    """
    words = np.asarray(words, dtype=np.uint16)
    if words.ndim != 2:
        raise ValueError("words must be a 2-D array: one row of registers per value")
    raw = _word_bytes(words, word_order, byte_order)
    if type_ == "bool":
        v = raw.view(">u2")[:, 0]
        if bit is None:
            flags: np.ndarray = (v != 0).astype(np.uint8)
            return flags
        return ((v >> np.uint16(bit)) & 1).astype(np.uint8)
    dt = DTYPES[type_]
    if words.shape[1] != dt.itemsize // 2:
        raise ValueError(f"{type_} takes {dt.itemsize // 2} registers, got rows of {words.shape[1]}")
    return raw.view(dt)[:, 0]


def decode_strings(words: np.ndarray, word_order: str = "big", byte_order: str = "big") -> list[str]:
    """Decode a (k, n) uint16 array into k strings (UTF-8, invalid bytes replaced, trailing NULs dropped)."""
    raw = _word_bytes(np.asarray(words, dtype=np.uint16), word_order, byte_order)
    return [bytes(row).rstrip(b"\x00").decode("utf-8", errors="replace") for row in raw]


def decode_point(point: ModbusPoint, registers: Sequence[int]) -> float | str:
    """Decode one point from its own registers (or one bit) into its engineering value. Not for hot paths."""
    if point.table in ("coil", "discrete"):
        return float(bool(registers[0]))
    words = np.asarray(registers, dtype=np.uint16).reshape(1, -1)
    if point.type == "string":
        return decode_strings(words, point.word_order, point.byte_order)[0]
    raw = decode_words(words, point.type, point.word_order, point.byte_order, point.bit)
    if point.type == "bool":
        return float(raw[0])
    return float(raw.astype(np.float64)[0]) * point.scale + point.offset


# ---------------------------------------------------------------------------------------------- encode


def _pack_bytes(data: bytes, word_order: str, byte_order: str) -> list[int]:
    """Big-endian bytes of a value -> registers in address order, honouring the orders."""
    words = np.frombuffer(data, dtype=">u2").astype(np.uint16)
    if byte_order == "little":
        words = words.byteswap()
    if word_order == "little":
        words = words[::-1]
    return [int(w) for w in words]


def encode_raw(point: ModbusPoint, raw: float | int | str, tag: str = "") -> list[int]:
    """Encode a raw (unscaled) value of ``point`` into its registers. Raises PointError naming ``tag``."""
    name = tag or f"{point.table} {point.address}"
    if point.type == "string":
        data = str(raw).encode("utf-8")
        size = 2 * (point.length or 1)
        if len(data) > size:
            raise PointError(f"{name}: string of {len(data)} bytes does not fit {size // 2} registers")
        return _pack_bytes(data.ljust(size, b"\x00"), point.word_order, point.byte_order)
    if point.type == "bool":
        return [1 if raw else 0]
    value = float(raw)
    if point.type in _FLOAT_MAX:
        if np.isfinite(value) and abs(value) > _FLOAT_MAX[point.type]:
            raise PointError(f"{name}: {value!r} is out of range for {point.type}")
        data = np.array([value], dtype=DTYPES[point.type]).tobytes()
        return _pack_bytes(data, point.word_order, point.byte_order)
    if not np.isfinite(value):
        raise PointError(f"{name}: {value!r} cannot be written to an integer register ({point.type})")
    ivalue = int(raw) if isinstance(raw, int) else round(value)
    lo, hi = _INT_RANGES[point.type]
    if not lo <= ivalue <= hi:
        raise PointError(f"{name}: {raw!r} is out of range for {point.type} [{lo}, {hi}]")
    data = np.array([ivalue], dtype=DTYPES[point.type]).tobytes()
    return _pack_bytes(data, point.word_order, point.byte_order)


def to_raw(point: ModbusPoint, value: float) -> float:
    """Invert the point's ``scale``/``offset``: the raw value whose engineering value is ``value``."""
    if point.type in ("bool", "string"):
        return value
    if point.scale == 0:
        raise PointError(f"{point.table} {point.address}: scale 0 cannot be inverted for a write")
    return (value - point.offset) / point.scale


# ---------------------------------------------------------------------------------- vectorised blocks


@dataclass(frozen=True)
class _Group:
    type: str
    word_order: str
    byte_order: str
    bit: int | None
    rows: np.ndarray  # positions of the group's points in the decoder's point list
    gather: np.ndarray  # (k, n) indices into the register buffer


class RegisterDecoder:
    """Decode many register points from one uint16 buffer in a few numpy operations per type group.

    ``offsets[i]`` is where point ``i``'s first register sits in the buffer. ``decode`` returns the
    engineering values (float64, scale/offset applied; NaN for strings) and ``strings`` the string points.
    """

    def __init__(self, points: Sequence[ModbusPoint], offsets: Sequence[int]):
        if len(points) != len(offsets):
            raise ValueError("points and offsets differ in length")
        self.n = len(points)
        self.scale = np.array([p.scale for p in points], dtype=np.float64)
        self.offset = np.array([p.offset for p in points], dtype=np.float64)
        plain = np.array([p.type in ("bool", "string") for p in points], dtype=bool)
        self.scale[plain], self.offset[plain] = 1.0, 0.0
        self.unit_scale = bool((self.scale == 1.0).all() and (self.offset == 0.0).all())
        keys: dict[tuple[str, str, str, int | None], list[int]] = {}
        self.string_rows: list[int] = []
        self.string_gather: list[tuple[np.ndarray, str, str]] = []
        for i, (p, off) in enumerate(zip(points, offsets, strict=True)):
            if p.type == "string":
                self.string_rows.append(i)
                idx = np.arange(off, off + (p.length or 1), dtype=np.intp)
                self.string_gather.append((idx, p.word_order, p.byte_order))
                continue
            wo = p.word_order if REGISTERS[p.type] > 1 else "big"
            keys.setdefault((p.type, wo, p.byte_order, p.bit), []).append(i)
        self.groups = [self._group(k, rows, points, offsets) for k, rows in keys.items()]

    @staticmethod
    def _group(key: tuple[str, str, str, int | None], rows: list[int], points: Sequence[ModbusPoint],
               offsets: Sequence[int]) -> _Group:
        type_, wo, bo, bit = key
        width = REGISTERS[type_]
        starts = np.array([offsets[r] for r in rows], dtype=np.intp)
        gather = starts[:, None] + np.arange(width, dtype=np.intp)[None, :]
        return _Group(type_, wo, bo, bit, np.array(rows, dtype=np.intp), gather)

    def decode(self, buffer: np.ndarray) -> np.ndarray:
        """Engineering values of every point from ``buffer`` (uint16); NaN for string points."""
        out = np.full(self.n, np.nan)
        for g in self.groups:
            out[g.rows] = decode_words(buffer[g.gather], g.type, g.word_order, g.byte_order, g.bit)
        if not self.unit_scale:
            out = out * self.scale + self.offset
        return out

    def strings(self, buffer: np.ndarray) -> list[str]:
        """The values of the string points (in ``string_rows`` order)."""
        return [decode_strings(buffer[idx][None, :], wo, bo)[0] for idx, wo, bo in self.string_gather]
