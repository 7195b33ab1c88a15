"""Static checks of a Modbus device's points, and the read planner (points coalesced into block reads).

Planning: points are grouped by (unit id, table, poll period); within a group, sorted by address, and
neighbours are joined into one block read while the block stays within ``max_block`` registers (2000 bits
for coils and discrete inputs) and the unused registers between two neighbours are at most ``max_gap``.
For bit tables the gap allowance is ``max_gap * 16`` bits (the same bytes on the wire as ``max_gap``
registers). Pure functions: nothing here talks to a device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from plantlink.connectors.modbus.config import ModbusDevice, ModbusPoint
from plantlink.connectors.plugin import PointIssue
from plantlink.model.schema import Tag

#: Protocol limits of one read request.
MAX_REGISTERS = 125
MAX_BITS = 2000
BIT_TABLES = ("coil", "discrete")


@dataclass(frozen=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``, serving ``members``."""

    unit_id: int
    table: str
    start: int
    count: int
    #: Indices (into the planner's input) of the points this block serves, by address.
    members: tuple[int, ...]

    @property
    def is_bits(self) -> bool:
        return self.table in BIT_TABLES


@dataclass(frozen=True)
class PollGroup:
    """All the block reads due at one poll period."""

    period: float
    blocks: tuple[Block, ...]

    @property
    def members(self) -> tuple[int, ...]:
        return tuple(i for b in self.blocks for i in b.members)


def plan_reads(device: ModbusDevice, points: Sequence[ModbusPoint]) -> list[PollGroup]:
    """Coalesce ``points`` into block reads, grouped by poll period (fastest first)."""
    groups: dict[tuple[int, str, float], list[int]] = {}
    for i, p in enumerate(points):
        key = (unit_of(device, p), p.table, p.poll or device.poll)
        groups.setdefault(key, []).append(i)
    by_period: dict[float, list[Block]] = {}
    for (unit, table, period), idx in sorted(groups.items()):
        by_period.setdefault(period, []).extend(_coalesce(device, unit, table, points, idx))
    return [PollGroup(period, tuple(blocks)) for period, blocks in sorted(by_period.items())]


def unit_of(device: ModbusDevice, point: ModbusPoint) -> int:
    return device.unit_id if point.unit_id is None else point.unit_id


def _coalesce(device: ModbusDevice, unit: int, table: str, points: Sequence[ModbusPoint],
              idx: list[int]) -> list[Block]:
    bits = table in BIT_TABLES
    limit = MAX_BITS if bits else device.max_block
    gap = device.max_gap * 16 if bits else device.max_gap
    order = sorted(idx, key=lambda i: (points[i].address, points[i].count))
    blocks: list[Block] = []
    start = end = -1
    members: list[int] = []
    for i in order:
        a, b = points[i].address, points[i].address + points[i].count
        if members and a - end <= gap and max(end, b) - start <= limit:
            end = max(end, b)
            members.append(i)
            continue
        if members:
            blocks.append(Block(unit, table, start, end - start, tuple(members)))
        start, end, members = a, b, [i]
    if members:
        blocks.append(Block(unit, table, start, end - start, tuple(members)))
    return blocks


# --------------------------------------------------------------------------------------------- checks

_INTEGER = ("int16", "uint16", "int32", "uint32", "int64")


def check_points(device: BaseModel, points: Sequence[tuple[Tag, BaseModel]]) -> list[PointIssue]:
    """Every problem of a device's points that the config models alone cannot see."""
    assert isinstance(device, ModbusDevice)
    issues: list[PointIssue] = []
    srcs: list[ModbusPoint] = []
    for i, (tag, src) in enumerate(points):
        assert isinstance(src, ModbusPoint)
        srcs.append(src)
        issues.extend(_check_one(device, i, tag, src))
    issues.extend(_check_overlaps([t for t, _ in points], srcs, device))
    return issues


def _check_one(device: ModbusDevice, i: int, tag: Tag, p: ModbusPoint) -> list[PointIssue]:
    out: list[PointIssue] = []
    if tag.type == "string" and p.type != "string":
        out.append(PointIssue(i, "type", f"a string tag needs register type 'string', not {p.type!r}"))
    if tag.type != "string" and p.type == "string":
        out.append(PointIssue(i, "type", f"register type 'string' cannot feed a {tag.type} tag "
                                         "(set the tag's type: string)"))
    if tag.type == "bool" and p.type not in ("bool", *_INTEGER):
        out.append(PointIssue(i, "type", f"a bool tag needs a bool or integer register, not {p.type!r}"))
    if p.type in ("bool", "string") and (p.scale != 1.0 or p.offset != 0.0):
        field = "scale" if p.scale != 1.0 else "offset"
        out.append(PointIssue(i, field, f"scale/offset do not apply to type {p.type!r}"))
    if tag.writable and p.table in ("input", "discrete"):
        out.append(PointIssue(i, "table", f"a writable tag cannot use table {p.table!r} (read-only in Modbus); "
                                          "use 'holding' or 'coil'"))
    if p.table not in BIT_TABLES and p.count > device.max_block:
        out.append(PointIssue(i, "length", f"{p.count} registers exceed the device's max_block "
                                           f"({device.max_block}); one read cannot fetch this point"))
    return out


def _layout(p: ModbusPoint) -> tuple[object, ...]:
    return (p.address, p.type, p.word_order, p.byte_order, p.length, p.bit)


def _is_flag(p: ModbusPoint) -> bool:
    return p.type == "bool" and p.bit is not None


def _compatible(a: ModbusPoint, b: ModbusPoint) -> bool:
    """Overlapping points may share registers only if they read them identically.

    Bits picked from one register are separate data, so ``bool`` points with ``bit`` may share their
    register with each other and with a one-register integer (a status word and its flags).
    """
    if a.table in BIT_TABLES or _layout(a) == _layout(b):
        return True
    if a.address != b.address or not (_is_flag(a) or _is_flag(b)):
        return False
    return all(_is_flag(p) or p.type in ("int16", "uint16", "bool") for p in (a, b))


def _check_overlaps(tags: Sequence[Tag], srcs: Sequence[ModbusPoint], device: ModbusDevice) -> list[PointIssue]:
    out: list[PointIssue] = []
    by_table: dict[tuple[int, str], list[int]] = {}
    for i, p in enumerate(srcs):
        by_table.setdefault((unit_of(device, p), p.table), []).append(i)
    for idx in by_table.values():
        idx.sort(key=lambda i: srcs[i].address)
        active: list[int] = []  # points whose range may still overlap the next one
        for i in idx:
            p = srcs[i]
            active = [j for j in active if srcs[j].address + srcs[j].count > p.address]
            for j in active:
                if not _compatible(srcs[j], p):
                    q = srcs[j]
                    out.append(PointIssue(i, "address", (
                        f"{p.table} {p.address}..{p.address + p.count - 1} ({p.type}) overlaps tag "
                        f"{tags[j].name!r} at {q.address}..{q.address + q.count - 1} ({q.type}); "
                        "points sharing registers must read them identically")))
                    break
            active.append(i)
    return out
