"""Engineering values to Modbus registers and back, as a device would hold them.

The chain a client applies when reading is ``raw`` (decoded from the registers by type, word and byte
order) -> ``raw * scale + offset`` (the point) -> the tag's linear ``scaling`` if any. The simulator
applies the inverse: the tag's scaling backwards, then ``raw = (eng - offset) / scale``, rounded and
clipped to the range of integer types. ``word_order: big`` puts the most significant register first;
``byte_order: big`` puts the most significant byte of each register first. Strings hold two characters a
register (the first in the high byte when ``byte_order`` is big), padded with NUL, and follow ``word_order``
like numbers do (as the connector's codec reads them). This is a second, independent implementation of the
register layout: the simulator serves with it and the connector decodes with its own, so end-to-end tests
check one against the other.
"""

from __future__ import annotations

import math
import struct

from plantlink.connectors.modbus.config import ModbusPoint
from plantlink.errors import PointError
from plantlink.model.schema import Tag
from plantlink.sim.machine import Value

FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "float32": "f", "float64": "d"}
INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1), "int64": (-(2**63), 2**63 - 1),
}


def check_point(point: ModbusPoint, tag: Tag) -> None:
    """Raise PointError when the point's scaling cannot be inverted."""
    if point.scale == 0:
        raise PointError(f"tag {tag.name!r}: scale 0 cannot be served (raw = (eng - offset) / scale)")


def eng_to_raw(point: ModbusPoint, tag: Tag, value: float) -> float:
    v = float(value)
    s = tag.scaling
    if s is not None:
        v = s.raw_low + (v - s.eng_low) * (s.raw_high - s.raw_low) / (s.eng_high - s.eng_low)
    return (v - point.offset) / point.scale


def raw_to_eng(point: ModbusPoint, tag: Tag, raw: float) -> float:
    v = raw * point.scale + point.offset
    s = tag.scaling
    if s is not None:
        v = s.eng_low + (v - s.raw_low) * (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    return v


def to_words(data: bytes, word_order: str, byte_order: str) -> list[int]:
    """Big-endian ``data`` to registers in the given word and byte order."""
    regs = [data[i:i + 2] for i in range(0, len(data), 2)]
    if word_order == "little":
        regs.reverse()
    if byte_order == "little":
        regs = [r[::-1] for r in regs]
    return [int.from_bytes(r, "big") for r in regs]


def from_words(regs: list[int], word_order: str, byte_order: str) -> bytes:
    """Registers in the given word and byte order back to big-endian bytes."""
    parts = [(r & 0xFFFF).to_bytes(2, "big") for r in regs]
    if byte_order == "little":
        parts = [p[::-1] for p in parts]
    if word_order == "little":
        parts.reverse()
    return b"".join(parts)


def wire_bit(point: ModbusPoint) -> int:
    """The bit of the register as sent that holds a ``bool`` point's ``bit``."""
    bit = point.bit or 0
    return bit ^ 8 if point.byte_order == "little" else bit


def encode(point: ModbusPoint, tag: Tag, value: Value) -> list[int]:
    """The registers holding ``value`` (for ``bool`` without ``bit``: one register, 1 or 0)."""
    if point.type == "string":
        n = 2 * (point.length or 1)
        data = str(value).encode("utf-8")[:n].ljust(n, b"\0")
        return to_words(data, point.word_order, point.byte_order)
    if point.type == "bool":
        return [1 if value else 0]
    raw = eng_to_raw(point, tag, float(value))
    if point.type in INT_RANGES:
        lo, hi = INT_RANGES[point.type]
        num: float | int = 0 if math.isnan(raw) else min(max(round(raw), lo), hi)
    else:
        num = raw
    return to_words(struct.pack(">" + FORMATS[point.type], num), point.word_order, point.byte_order)


def decode(point: ModbusPoint, tag: Tag, regs: list[int]) -> Value:
    """The engineering value held by ``regs`` (the inverse of ``encode``)."""
    if point.type == "string":
        return from_words(regs, point.word_order, point.byte_order).rstrip(b"\0").decode("utf-8", "replace")
    if point.type == "bool":
        return bool(regs[0] >> wire_bit(point) & 1) if point.bit is not None else regs[0] != 0
    (raw,) = struct.unpack(">" + FORMATS[point.type], from_words(regs, point.word_order, point.byte_order))
    return raw_to_eng(point, tag, raw)
