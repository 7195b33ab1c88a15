"""The Modbus read planner and static point checks (pure functions)."""

from __future__ import annotations

from typing import Any

from plantlink.connectors.modbus.config import ModbusDevice, ModbusPoint
from plantlink.connectors.modbus.plan import Block, check_points, plan_reads
from plantlink.model.schema import Tag

DEV = ModbusDevice(host="127.0.0.1", max_block=10, max_gap=2, poll=1.0)


def pt(address: int, **kw: Any) -> ModbusPoint:
    return ModbusPoint(address=address, **kw)


def blocks(device: ModbusDevice, points: list[ModbusPoint]) -> list[tuple[int, str, int, int, tuple[int, ...]]]:
    return [(b.unit_id, b.table, b.start, b.count, b.members) for g in plan_reads(device, points) for b in g.blocks]


def test_neighbours_coalesce_into_one_block() -> None:
    pts = [pt(0), pt(1, type="float32"), pt(3)]
    assert blocks(DEV, pts) == [(1, "holding", 0, 4, (0, 1, 2))]


def test_gap_edge_exactly_max_gap_joins_one_more_splits() -> None:
    # point at 0 (ends at 1); next at 3 leaves registers 1,2 unused: gap 2 == max_gap -> joined
    assert blocks(DEV, [pt(0), pt(3)]) == [(1, "holding", 0, 4, (0, 1))]
    # next at 4 leaves 3 unused registers: split
    assert blocks(DEV, [pt(0), pt(4)]) == [(1, "holding", 0, 1, (0,)), (1, "holding", 4, 1, (1,))]
    no_gap = DEV.model_copy(update={"max_gap": 0})
    assert blocks(no_gap, [pt(0), pt(1), pt(3)]) == [(1, "holding", 0, 2, (0, 1)), (1, "holding", 3, 1, (2,))]


def test_max_block_edge() -> None:
    # 0..9 is exactly 10 registers: one block; a point ending at 11 would make 11: new block
    pts = [pt(0, type="float64"), pt(4, type="float64"), pt(8, type="float32")]
    assert blocks(DEV, pts) == [(1, "holding", 0, 10, (0, 1, 2))]
    pts.append(pt(10))
    assert blocks(DEV, pts) == [(1, "holding", 0, 10, (0, 1, 2)), (1, "holding", 10, 1, (3,))]
    # a point straddling the limit goes whole into the next block
    pts[3] = pt(9, type="float32")
    assert blocks(DEV, pts) == [(1, "holding", 0, 10, (0, 1, 2)), (1, "holding", 9, 2, (3,))]


def test_unsorted_input_and_overlaps_are_handled() -> None:
    pts = [pt(4), pt(0, type="float32"), pt(0, type="float32"), pt(1)]
    assert blocks(DEV, pts) == [(1, "holding", 0, 5, (1, 2, 3, 0))]


def test_separate_tables_units_and_polls() -> None:
    pts = [pt(0), pt(1, table="input"), pt(2, unit_id=7), pt(3, poll=0.5), pt(2), pt(0, table="coil", type="bool")]
    groups = plan_reads(DEV, pts)
    assert [g.period for g in groups] == [0.5, 1.0]
    assert groups[0].blocks == (Block(1, "holding", 3, 1, (3,)),)
    got = {(b.unit_id, b.table): (b.start, b.count, b.members) for b in groups[1].blocks}
    assert got == {(1, "holding"): (0, 3, (0, 4)), (1, "input"): (1, 1, (1,)), (7, "holding"): (2, 1, (2,)),
                   (1, "coil"): (0, 1, (5,))}


def test_bit_tables_allow_2000_bits_and_gap_times_16() -> None:
    dev = DEV.model_copy(update={"max_gap": 1})
    coils = [pt(a, table="coil", type="bool") for a in (0, 17, 1999, 2000)]
    # gap 0..17: 16 unused bits == 1 register worth -> joined; 17..1999 is far more -> split
    assert blocks(dev, coils) == [(1, "coil", 0, 18, (0, 1)), (1, "coil", 1999, 2, (2, 3))]
    wide = DEV.model_copy(update={"max_gap": 124})
    spread = [pt(a, table="discrete", type="bool") for a in range(0, 4000, 100)]
    got = blocks(wide, spread)
    assert [(b[2], b[3]) for b in got] == [(0, 1901), (2000, 1901)]  # 0..1900 is 1901 bits; +2000 = 2001


def test_max_block_125_default() -> None:
    dev = ModbusDevice(host="h")
    pts = [pt(a) for a in range(0, 300)]
    assert [b[3] for b in blocks(dev, pts)] == [125, 125, 50]


# ------------------------------------------------------------------------------------------- checks

def tag(name: str = "t", **kw: Any) -> Tag:
    return Tag(name=name, source={"device": "d"}, **kw)  # type: ignore[arg-type]


def issues(points: list[tuple[Tag, ModbusPoint]], device: ModbusDevice = DEV) -> list[tuple[int, str, str]]:
    return [(i.index, i.field, i.message) for i in check_points(device, points)]


def test_identical_overlap_is_fine_different_is_not() -> None:
    same = [(tag("a"), pt(10, type="float32")), (tag("b"), pt(10, type="float32", scale=2.0))]
    assert issues(same) == []
    clash = [(tag("a"), pt(10, type="float32")), (tag("b"), pt(11, type="int16"))]
    [(idx, field, msg)] = issues(clash)
    assert (idx, field) == (1, "address") and "overlaps tag 'a'" in msg and "10..11" in msg
    orders = [(tag("a"), pt(10, type="float32")), (tag("b"), pt(10, type="float32", word_order="little"))]
    assert len(issues(orders)) == 1


def test_overlap_is_per_table_and_unit() -> None:
    pts = [(tag("a"), pt(10, type="float32")), (tag("b"), pt(10, table="input")),
           (tag("c"), pt(11, unit_id=2))]
    assert issues(pts) == []


def test_bits_may_share_a_register_with_each_other_and_a_status_word() -> None:
    pts = [(tag("w", type="int"), pt(5)), (tag("b0", type="bool"), pt(5, type="bool", bit=0)),
           (tag("b1", type="bool"), pt(5, type="bool", bit=1))]
    assert issues(pts) == []
    bad = [(tag("f"), pt(4, type="float32")), (tag("b1", type="bool"), pt(5, type="bool", bit=1))]
    assert len(issues(bad)) == 1


def test_type_compatibility() -> None:
    got = issues([
        (tag("s", type="string"), pt(0, type="uint16")),
        (tag("n"), pt(10, type="string", length=2)),
        (tag("b", type="bool"), pt(20, type="float32")),
        (tag("ok", type="bool"), pt(30, type="uint16")),
        (tag("sc"), pt(40, type="bool", scale=2.0)),
        (tag("w", writable=True), pt(50, table="input")),
        (tag("long", type="string"), pt(60, type="string", length=11)),
    ])
    assert [(i, f) for i, f, _ in got] == [(0, "type"), (1, "type"), (2, "type"), (4, "scale"), (5, "table"),
                                          (6, "length")]
    assert "max_block (10)" in got[-1][2]
