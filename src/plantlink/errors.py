"""The one exception tree of plantlink.

PlantlinkError
├── ConfigError          a plant model or setting that cannot be used (carries every problem found)
├── PluginError          an unknown or broken plugin (connector, historian backend, ...)
├── ConnectorError       a device could not be read or written
│   ├── DeviceUnavailable    the device is down / not connected
│   └── PointError           one point (tag) could not be read or decoded
└── HistorianError       the historian refused a write or a query
    └── QueryError           a query's arguments are invalid (unknown tag, reversed range, ...)
"""

from __future__ import annotations

from dataclasses import dataclass


class PlantlinkError(Exception):
    """Base of every error plantlink raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file, located precisely enough for a person to fix it."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        at = f" [{self.path}]" if self.path else ""
        return f"{where}:{at} {self.message}"


class ConfigError(PlantlinkError):
    """A configuration that cannot be used. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or "invalid configuration")


class PluginError(PlantlinkError):
    """An unknown or broken plugin."""


class ConnectorError(PlantlinkError):
    """A device could not be read or written."""


class DeviceUnavailable(ConnectorError):
    """The device is not connected."""


class PointError(ConnectorError):
    """One point could not be read, decoded or encoded."""


class HistorianError(PlantlinkError):
    """The historian refused a write or a query."""


class QueryError(HistorianError):
    """A historian query with invalid arguments; ``field`` names the argument at fault."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)
