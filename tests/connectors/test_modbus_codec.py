"""The Modbus register codec against values packed independently with Python's struct module."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantlink.connectors.modbus.codec import (
    RegisterDecoder,
    decode_point,
    decode_strings,
    decode_words,
    encode_raw,
    to_raw,
)
from plantlink.connectors.modbus.config import ModbusPoint
from plantlink.errors import PointError
from tests.connectors.modbus_cases import STRUCT, pack, pack_string

ORDERS = [("big", "big"), ("little", "big"), ("big", "little"), ("little", "little")]
BOUNDS = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1),
          "uint32": (0, 2**32 - 1), "int64": (-(2**63), 2**63 - 1)}


def values_of(type_: str) -> st.SearchStrategy[float | int]:
    if type_ in BOUNDS:
        lo, hi = BOUNDS[type_]
        return st.integers(lo, hi)
    width = 32 if type_ == "float32" else 64
    return st.floats(allow_nan=False, width=width)


def test_float32_one_by_hand_in_every_order() -> None:
    # 1.0f = 0x3F800000: bytes A B C D = 3F 80 00 00
    words = {("big", "big"): [0x3F80, 0x0000], ("little", "big"): [0x0000, 0x3F80],
             ("big", "little"): [0x803F, 0x0000], ("little", "little"): [0x0000, 0x803F]}
    for (wo, bo), regs in words.items():
        assert decode_words(np.array([regs]), "float32", wo, bo)[0] == 1.0
        assert encode_raw(ModbusPoint(address=0, type="float32", word_order=wo, byte_order=bo), 1.0) == regs


def test_int32_by_hand_in_every_order() -> None:
    words = {("big", "big"): [0x0102, 0x0304], ("little", "big"): [0x0304, 0x0102],
             ("big", "little"): [0x0201, 0x0403], ("little", "little"): [0x0403, 0x0201]}
    for (wo, bo), regs in words.items():
        assert decode_words(np.array([regs]), "int32", wo, bo)[0] == 0x01020304


@pytest.mark.parametrize("wo,bo", ORDERS)
@pytest.mark.parametrize("type_", list(STRUCT))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_type_and_order_round_trips(type_: str, wo: str, bo: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(values_of(type_), min_size=1, max_size=6))
    regs = [pack(type_, v, wo, bo) for v in values]
    got = decode_words(np.array(regs, dtype=np.uint16), type_, wo, bo)
    expected = [struct.unpack(STRUCT[type_], struct.pack(STRUCT[type_], v))[0] for v in values]
    assert got.tolist() == expected
    point = ModbusPoint(address=0, type=type_, word_order=wo, byte_order=bo)  # type: ignore[arg-type]
    for v, r in zip(values, regs, strict=True):
        assert encode_raw(point, v) == r


@pytest.mark.parametrize("wo,bo", ORDERS)
def test_strings(wo: str, bo: str) -> None:
    regs = [pack_string(s, 3, wo, bo) for s in ("HELLO!", "AB", "", "é")]
    assert decode_strings(np.array(regs), wo, bo) == ["HELLO!", "AB", "", "é"]
    point = ModbusPoint(address=0, type="string", length=3, word_order=wo, byte_order=bo)  # type: ignore[arg-type]
    assert encode_raw(point, "AB") == pack_string("AB", 3, wo, bo)
    with pytest.raises(PointError, match=r"line/m/name.*does not fit 3 registers"):
        encode_raw(point, "TOO LONG!", "line/m/name")


def test_bool_register_and_bits() -> None:
    regs = np.array([[0x0000], [0x0001], [0x8000], [0x0100]], dtype=np.uint16)
    assert decode_words(regs, "bool").tolist() == [0, 1, 1, 1]
    assert decode_words(regs, "bool", bit=0).tolist() == [0, 1, 0, 0]
    assert decode_words(regs, "bool", bit=15).tolist() == [0, 0, 1, 0]
    assert decode_words(regs, "bool", bit=8).tolist() == [0, 0, 0, 1]
    # byte order little: the register's bytes are swapped before the bit is taken
    assert decode_words(regs, "bool", byte_order="little", bit=0).tolist() == [0, 0, 0, 1]
    assert decode_words(regs, "bool", byte_order="little", bit=7).tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize(("type_", "value"), [("int16", 32768), ("int16", -32769), ("uint16", -1),
                                              ("uint16", 65536), ("int32", 2**31), ("uint32", -1),
                                              ("int64", 2**63), ("float32", 1e39), ("int16", math.inf)])
def test_encode_out_of_range_names_the_tag(type_: str, value: float) -> None:
    point = ModbusPoint(address=0, type=type_)  # type: ignore[arg-type]
    with pytest.raises(PointError, match=r"site/a/l/m/speed"):
        encode_raw(point, value, "site/a/l/m/speed")


def test_encode_rounds_to_integer_registers() -> None:
    assert encode_raw(ModbusPoint(address=0, type="int16"), 12.6) == [13]
    assert encode_raw(ModbusPoint(address=0, type="int16"), -2.4) == [0xFFFE]


def test_scale_offset_and_inverse() -> None:
    p = ModbusPoint(address=0, type="int16", scale=0.1, offset=-40.0)
    assert decode_point(p, [0xFF9C]) == pytest.approx(-100 * 0.1 - 40.0)  # 0xFF9C = -100
    assert to_raw(p, -50.0) == pytest.approx(-100.0)
    b = ModbusPoint(address=0, type="bool", bit=3)
    assert decode_point(b, [0b1000]) == 1.0
    coil = ModbusPoint(address=0, table="coil", type="bool")
    assert decode_point(coil, [True]) == 1.0


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_vectorised_decoder_matches_per_point_struct(data: st.DataObject) -> None:
    """A random layout of mixed points in one buffer decodes like struct would, point by point."""
    n = data.draw(st.integers(1, 25))
    points, offsets, expected, buf = [], [], [], []
    for _ in range(n):
        type_ = data.draw(st.sampled_from([*STRUCT, "bool", "string"]))
        wo, bo = data.draw(st.sampled_from(ORDERS))
        scale = data.draw(st.sampled_from([1.0, 0.5, -2.0]))
        offset = data.draw(st.sampled_from([0.0, 10.0]))
        offsets.append(len(buf))
        if type_ == "string":
            text = data.draw(st.text("ABCxyz09 ", max_size=6))
            points.append(ModbusPoint(address=0, type="string", length=3, word_order=wo, byte_order=bo))
            buf += pack_string(text, 3, wo, bo)
            expected.append(text)
        elif type_ == "bool":
            bit = data.draw(st.none() | st.integers(0, 15))
            word = data.draw(st.integers(0, 0xFFFF))
            points.append(ModbusPoint(address=0, type="bool", bit=bit, byte_order=bo))
            buf.append(word)
            val = struct.unpack(">H" if bo == "big" else "<H", struct.pack(">H", word))[0]
            expected.append(float(val != 0 if bit is None else (val >> bit) & 1))
        else:
            v = data.draw(values_of(type_))
            points.append(ModbusPoint(address=0, type=type_, word_order=wo, byte_order=bo,  # type: ignore[arg-type]
                                      scale=scale, offset=offset))
            buf += pack(type_, v, wo, bo)
            raw = struct.unpack(STRUCT[type_], struct.pack(STRUCT[type_], v))[0]
            expected.append(float(raw) * scale + offset)
        buf += [0xDEAD] * data.draw(st.integers(0, 2))  # unused registers between points
    dec = RegisterDecoder(points, offsets)
    arr = np.array(buf, dtype=np.uint16)
    got = dec.decode(arr)
    strings = iter(dec.strings(arr))
    for i, e in enumerate(expected):
        if isinstance(e, str):
            assert math.isnan(got[i]) and next(strings) == e
        else:
            assert got[i] == pytest.approx(e, rel=1e-12, abs=0) or (got[i] == e)
