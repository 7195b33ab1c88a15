"""The S7 read planner and the static check of a device's points. Pure functions: no snap7, no device.

Points are grouped by poll period, then by area and DB; within a group, sorted by byte offset, neighbours are
joined into one contiguous range while the unused bytes between them are at most ``max_gap``. A range is cut
into items of at most ``pdu - 18`` data bytes (the reply's S7 header, parameter and item header take the
rest: PDU 240 -> 222 bytes), and the items are packed into as few multi-item read requests as the PDU allows:
at most 20 items (``MAX_ITEMS``), a request of ``14 + 12 * items`` bytes and a reply of ``14`` bytes plus
``4 + size`` (rounded up to even) per item, each within the PDU. A range the CPU refuses is split into one
range per member (``split_range``), so that only the members it really refuses stay bad.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from plantlink.connectors.plugin import PointIssue
from plantlink.connectors.s7.address import S7Address
from plantlink.connectors.s7.config import S7Device, S7Point
from plantlink.model.schema import Tag

#: Items one multi-variable read may carry (snap7's and the CPUs' limit).
MAX_ITEMS = 20
#: Bytes of a read reply that are not item data: S7 header (12) and parameter (2).
REPLY_HEADER = 14
#: Bytes of a read request before its item specifications (header 12, parameter 2); each item adds 12.
REQUEST_HEADER, ITEM_SPEC = 14, 12
ITEM_HEADER = 4


def max_item_bytes(pdu: int) -> int:
    """Data bytes one read item can carry in a PDU of ``pdu`` bytes (240 -> 222)."""
    return pdu - REPLY_HEADER - ITEM_HEADER


@dataclass(frozen=True)
class Range:
    """A contiguous span of one area (and DB) read for ``members`` (indices into the planner's input)."""

    area: str
    db: int
    start: int
    size: int
    members: tuple[int, ...]


@dataclass(frozen=True)
class Item:
    """One item of a read request: ``size`` bytes from ``start``, part ``range`` (index) at ``offset``."""

    area: str
    db: int
    start: int
    size: int
    range: int
    offset: int


@dataclass(frozen=True)
class PollGroup:
    """What is read at one poll period: the ranges, and the requests (lists of items) that read them."""

    period: float
    ranges: tuple[Range, ...]
    requests: tuple[tuple[Item, ...], ...]


def plan_reads(device: S7Device, points: Sequence[S7Point], pdu: int) -> list[PollGroup]:
    """Join ``points`` into ranges and pack them into requests for a PDU of ``pdu`` bytes, fastest group first."""
    locs = [p.location for p in points]
    groups: dict[float, dict[tuple[str, int], list[int]]] = {}
    for i, p in enumerate(points):
        groups.setdefault(p.poll or device.poll, {}).setdefault((locs[i].area, locs[i].db), []).append(i)
    out = []
    for period, by_area in sorted(groups.items()):
        ranges: list[Range] = []
        for (area, db), idx in sorted(by_area.items()):
            ranges.extend(coalesce(area, db, locs, idx, device.max_gap))
        out.append(PollGroup(period, tuple(ranges), tuple(pack(ranges, pdu))))
    return out


def coalesce(area: str, db: int, locs: Sequence[S7Address], idx: Sequence[int], max_gap: int) -> list[Range]:
    order = sorted(idx, key=lambda i: (locs[i].start, locs[i].size))
    ranges: list[Range] = []
    start = end = -1
    members: list[int] = []
    for i in order:
        a, b = locs[i].start, locs[i].end
        if members and a - end <= max_gap:
            end = max(end, b)
            members.append(i)
            continue
        if members:
            ranges.append(Range(area, db, start, end - start, tuple(members)))
        start, end, members = a, b, [i]
    if members:
        ranges.append(Range(area, db, start, end - start, tuple(members)))
    return ranges


def pack(ranges: Sequence[Range], pdu: int) -> list[tuple[Item, ...]]:
    """Cut ranges into items that fit the PDU and pack them, in order, into as few requests as fit."""
    limit = max_item_bytes(pdu)
    items = [Item(r.area, r.db, r.start + off, min(limit, r.size - off), k, off)
             for k, r in enumerate(ranges) for off in range(0, r.size, limit)]
    max_items = min(MAX_ITEMS, (pdu - REQUEST_HEADER) // ITEM_SPEC)
    requests: list[tuple[Item, ...]] = []
    current: list[Item] = []
    reply = REPLY_HEADER
    for it in items:
        cost = ITEM_HEADER + it.size + (it.size & 1)
        if current and (len(current) >= max_items or reply + cost > pdu):
            requests.append(tuple(current))
            current, reply = [], REPLY_HEADER
        current.append(it)
        reply += cost
    if current:
        requests.append(tuple(current))
    return requests


def split_range(group: PollGroup, k: int, locs: Sequence[S7Address], pdu: int) -> PollGroup:
    """``group`` with its range ``k`` replaced by one range per member (each its own bytes), repacked: after
    the CPU refuses a range, a member outside its area (past the end of a DB) no longer takes its neighbours
    down with it."""
    r = group.ranges[k]
    alone = [Range(r.area, r.db, locs[i].start, locs[i].size, (i,)) for i in r.members]
    ranges = (*group.ranges[:k], *alone, *group.ranges[k + 1:])
    return PollGroup(group.period, ranges, tuple(pack(ranges, pdu)))


# --------------------------------------------------------------------------------------------- checks

def check_points(device: BaseModel, points: Sequence[tuple[Tag, BaseModel]]) -> list[PointIssue]:
    """Problems of a device's points that the config models alone cannot see (type against the tag's)."""
    assert isinstance(device, S7Device)
    issues: list[PointIssue] = []
    for i, (tag, src) in enumerate(points):
        assert isinstance(src, S7Point)
        loc = src.location
        if tag.type == "string" and loc.type not in ("STRING", "CHAR"):
            issues.append(PointIssue(i, "type", f"a string tag needs S7 type STRING[n] or CHAR, not {loc.type}"))
        elif tag.type != "string" and loc.type in ("STRING", "CHAR"):
            issues.append(PointIssue(i, "type", f"S7 type {loc.type} cannot feed a {tag.type} tag "
                                                "(set the tag's type: string)"))
        elif tag.type == "bool" and loc.type in ("REAL", "LREAL"):
            issues.append(PointIssue(i, "type", f"a bool tag needs BOOL or an integer type, not {loc.type}"))
        if tag.writable and loc.area == "I":
            issues.append(PointIssue(i, "address", f"{src.address}: inputs (I) are written by the I/O, not by "
                                                   "plantlink; a writable tag needs DB, M or Q"))
        if loc.size > 8192:
            issues.append(PointIssue(i, "type", f"{loc.type} is too large"))
    return issues
