"""Allen-Bradley Logix connector (ControlLogix / CompactLogix over EtherNet/IP, pylogix): tags by name.

Importing this package (the plugin: config models, the tag-name parser and the static check) does not import
pylogix, numpy or pyarrow; ``LogixConnector`` (``plugin.connector``) does, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantlink.connectors.logix.config import LogixDevice, LogixPoint
from plantlink.connectors.logix.plan import check_points
from plantlink.connectors.plugin import ConnectorPlugin

if TYPE_CHECKING:
    from plantlink.connectors.logix.client import LogixConnector

plugin = ConnectorPlugin(
    name="logix",
    device_model=LogixDevice,
    source_model=LogixPoint,
    connector="plantlink.connectors.logix.client:LogixConnector",
    check=check_points,
)

__all__ = ["LogixConnector", "LogixDevice", "LogixPoint", "plugin"]


def __getattr__(name: str) -> Any:
    if name == "LogixConnector":
        return plugin.connector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
