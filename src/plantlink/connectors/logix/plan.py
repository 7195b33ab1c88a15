"""What a Logix device reads at each poll period, and the static check of its points.

Every point names a tag; the points of one poll period are read together, as multi-service packets
(CIP service 0x0A) that the client library (pylogix) cuts to the connection size the controller granted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from plantlink.connectors.logix.config import LogixDevice, LogixPoint
from plantlink.connectors.plugin import PointIssue
from plantlink.model.schema import Tag

NUMERIC = ("SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT", "REAL", "LREAL")


@dataclass(frozen=True)
class PollGroup:
    """The points (indices into the device's points) read every ``period`` seconds."""

    period: float
    members: tuple[int, ...]


def plan_reads(device: LogixDevice, points: Sequence[LogixPoint]) -> list[PollGroup]:
    """One group per poll period, fastest first; the points keep their order in a group."""
    groups: dict[float, list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault(p.poll or device.poll, []).append(i)
    return [PollGroup(period, tuple(idx)) for period, idx in sorted(groups.items())]


def check_points(device: BaseModel, points: Sequence[tuple[Tag, BaseModel]]) -> list[PointIssue]:
    """Problems the config models alone cannot see: the Logix type against the tag's, a tag read twice."""
    assert isinstance(device, LogixDevice)
    issues: list[PointIssue] = []
    seen: dict[str, int] = {}
    for i, (tag, src) in enumerate(points):
        assert isinstance(src, LogixPoint)
        t = src.type
        if tag.type == "string" and t not in (None, "STRING"):
            issues.append(PointIssue(i, "type", f"a string tag needs Logix type STRING, not {t}"))
        elif tag.type != "string" and t == "STRING":
            issues.append(PointIssue(i, "type", "Logix type STRING cannot feed a "
                                                f"{tag.type} tag (set the tag's type: string)"))
        elif tag.type == "bool" and t in ("REAL", "LREAL"):
            issues.append(PointIssue(i, "type", f"a bool tag needs BOOL or an integer type, not {t}"))
        elif tag.type == "string" and t is None:
            issues.append(PointIssue(i, "type", "a string tag needs type: STRING on its source"))
        key = src.tag.lower()
        if key in seen:
            issues.append(PointIssue(i, "tag", f"{src.tag} is already read by another tag of this device "
                                               f"(point {seen[key] + 1}); read it once"))
        seen.setdefault(key, i)
    return issues
