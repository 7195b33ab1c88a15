"""Siemens S7 connector (S7-300/400/1200/1500 over ISO-on-TCP, python-snap7): DB, M, I and Q areas.

Importing this package (the plugin: config models, the address parser and the static check) does not import
snap7, numpy or pyarrow; ``S7Connector`` (``plugin.connector``) does, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantlink.connectors.plugin import ConnectorPlugin
from plantlink.connectors.s7.config import S7Device, S7Point
from plantlink.connectors.s7.plan import check_points

if TYPE_CHECKING:
    from plantlink.connectors.s7.client import S7Connector

plugin = ConnectorPlugin(
    name="s7",
    device_model=S7Device,
    source_model=S7Point,
    connector="plantlink.connectors.s7.client:S7Connector",
    check=check_points,
)

__all__ = ["S7Connector", "S7Device", "S7Point", "plugin"]


def __getattr__(name: str) -> Any:
    if name == "S7Connector":
        return plugin.connector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
