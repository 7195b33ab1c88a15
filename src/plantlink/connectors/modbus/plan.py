"""(being written) Read planning for Modbus: coalescing points into block reads."""

from collections.abc import Sequence

from pydantic import BaseModel

from plantlink.connectors.base import PointIssue
from plantlink.model.schema import Tag


def check_points(device: BaseModel, points: Sequence[tuple[Tag, BaseModel]]) -> list[PointIssue]:
    return []
