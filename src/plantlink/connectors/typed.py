"""A polling connector's first step, the same for each protocol: its device settings and every point's source
of the protocol's own models, and the protocol's static check of the points passed; else a ConfigError that
names the device or the point (a plugin loaded outside ``plantlink check`` must fail as clearly)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel

from plantlink.connectors.base import Point
from plantlink.connectors.plugin import PointCheck
from plantlink.errors import ConfigError, ConfigProblem

D = TypeVar("D", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)


def typed_setup(protocol: str, device_id: str, config: BaseModel, device_model: type[D], points: Sequence[Point],
                source_model: type[S], check: PointCheck) -> tuple[D, list[S]]:
    """``config`` as ``device_model`` and each point's source as ``source_model``, checked by ``check``."""
    where = f"<{protocol}>"
    if not isinstance(config, device_model):
        raise ConfigError([ConfigProblem(where, None, None, f"device {device_id}",
                                         f"config is {type(config).__name__}, expected {device_model.__name__}")])
    sources = [source_of(protocol, p, source_model) for p in points]
    issues = check(config, [(p.tag, s) for p, s in zip(points, sources, strict=True)])
    if issues:
        raise ConfigError([ConfigProblem(where, None, None, f"{points[i.index].path} {i.field}", i.message)
                           for i in issues])
    return config, sources


def source_of(protocol: str, point: Point, source_model: type[S]) -> S:
    """``point``'s source as the protocol's model (a ConfigError naming the point else)."""
    src = point.source
    if not isinstance(src, source_model):
        raise ConfigError([ConfigProblem(f"<{protocol}>", None, None, point.path,
                                         f"source is {type(src).__name__}, expected {source_model.__name__}")])
    return src
