"""What a connector plugin registers under its entry point, importable without any client library.

Loading a plant model loads the plugin of every device's protocol, to validate the device's settings and its
points; ``plantlink check`` does nothing else. So a plugin module names its config models and checks here and
its connector class by where to import it from (``"package.module:Class"``): the class, and with it the
client library (asyncua, pymodbus), numpy and pyarrow, is imported when a connector is first built, never
when a model is checked. A plugin may also pass the class itself (then it is imported with the plugin).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from pydantic import BaseModel

from plantlink.model.schema import Tag

if TYPE_CHECKING:
    from plantlink.connectors.base import Connector


@dataclass(frozen=True)
class PointIssue:
    """A problem found by a plugin's static check of its points: index into the points, field, message."""

    index: int
    field: str
    message: str


#: Optional static check of all points of one device (overlapping registers, ...).
PointCheck = Callable[[BaseModel, Sequence[tuple[Tag, BaseModel]]], list[PointIssue]]
#: Optional warnings about a device's settings that are valid but weaken it: (field, message) pairs that
#: ``plantlink check`` prints at the field's line (the model still loads).
DeviceWarnings = Callable[[BaseModel], list[tuple[str, str]]]


class ConnectorPlugin:
    """A connector plugin: its name, the pydantic models of a device and of a point source, its connector
    class (``connector``: the class, or ``"package.module:Class"`` imported on first use) and optional checks."""

    __slots__ = ("_connector", "check", "device_model", "name", "source_model", "warnings")

    def __init__(self, name: str, device_model: type[BaseModel], source_model: type[BaseModel],
                 connector: type[Connector] | str, check: PointCheck | None = None,
                 warnings: DeviceWarnings | None = None):
        if isinstance(connector, str) and connector.count(":") != 1:
            raise ValueError(f"connector plugin {name!r}: expected the connector class or 'package.module:Class', "
                             f"got {connector!r}")
        self.name = name
        self.device_model = device_model
        self.source_model = source_model
        self._connector = connector
        self.check = check
        self.warnings = warnings

    @property
    def connector(self) -> type[Connector]:
        """The connector class, imported on first use when the plugin names it by its import path."""
        ref = self._connector
        if not isinstance(ref, str):
            return ref
        module, _, attr = ref.partition(":")
        cls: type[Connector] = getattr(import_module(module), attr)
        self._connector = cls
        return cls

    def __repr__(self) -> str:
        ref = self._connector if isinstance(self._connector, str) else self._connector.__qualname__
        return f"ConnectorPlugin(name={self.name!r}, connector={ref!r})"
