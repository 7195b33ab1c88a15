"""The simulator's register encoding, against register values worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from plantlink.connectors.modbus.config import ModbusPoint
from plantlink.model.schema import Scaling, SourceRef, Tag
from plantlink.sim import codec


def point(**kw: Any) -> ModbusPoint:
    return ModbusPoint(address=0, **kw)


def tag(**kw: Any) -> Tag:
    return Tag(name="x", source=SourceRef(device="d"), **kw)


@pytest.mark.parametrize(
    ("word_order", "byte_order", "regs"),
    [  # 1.5 as float32 is 0x3FC00000: bytes A B C D = 3F C0 00 00
        ("big", "big", [0x3FC0, 0x0000]),
        ("little", "big", [0x0000, 0x3FC0]),
        ("big", "little", [0xC03F, 0x0000]),
        ("little", "little", [0x0000, 0xC03F]),
    ],
)
def test_float32_in_every_order(word_order: str, byte_order: str, regs: list[int]) -> None:
    p = point(type="float32", word_order=word_order, byte_order=byte_order)
    assert codec.encode(p, tag(), 1.5) == regs
    assert codec.decode(p, tag(), regs) == 1.5


def test_scaled_integers_round_and_clip() -> None:
    assert codec.encode(point(type="uint16", scale=0.1), tag(), 16.0) == [160]
    assert codec.encode(point(type="int16", scale=0.1), tag(), -12.5) == [0xFF83]  # -125
    assert codec.encode(point(type="uint16", scale=0.1, offset=-50), tag(), 27.0) == [770]
    assert codec.encode(point(type="uint16"), tag(), -4.0) == [0]  # clipped to the type's range
    assert codec.encode(point(type="uint32"), tag(), 70000) == [1, 70000 - 65536]
    assert codec.decode(point(type="int16", scale=0.1), tag(), [0xFF83]) == pytest.approx(-12.5)


def test_tag_scaling_is_inverted() -> None:
    t = tag(scaling=Scaling(raw_low=0, raw_high=27648, eng_low=0, eng_high=10))
    assert codec.encode(point(type="int16"), t, 3.2) == [8847]  # 3.2 * 2764.8 = 8847.36
    assert codec.decode(point(type="int16"), t, [8847]) == pytest.approx(3.2, abs=10 / 27648)


def test_strings_and_bits() -> None:
    assert codec.encode(point(type="string", length=2), tag(type="string"), "ABC") == [0x4142, 0x4300]
    little = point(type="string", length=2, byte_order="little")
    assert codec.encode(little, tag(type="string"), "ABC") == [0x4241, 0x0043]
    assert codec.decode(little, tag(type="string"), [0x4241, 0x0043]) == "ABC"
    assert codec.wire_bit(point(type="bool", bit=3)) == 3
    assert codec.wire_bit(point(type="bool", bit=3, byte_order="little")) == 11
    assert codec.decode(point(type="bool", bit=3), tag(type="bool"), [0b1000]) is True
    assert codec.decode(point(type="bool"), tag(type="bool"), [2]) is True
