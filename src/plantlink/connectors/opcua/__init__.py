"""OPC UA connector: subscriptions with sampling intervals and deadbands, reconnect and re-subscribe.

Importing this package (the plugin: config models, node id check and warnings) does not import asyncua, numpy
or pyarrow; ``OpcUaConnector`` (``plugin.connector``) does, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantlink.connectors.opcua.config import OpcUaDevice, OpcUaPoint, device_warnings
from plantlink.connectors.plugin import ConnectorPlugin

if TYPE_CHECKING:
    from plantlink.connectors.opcua.client import OpcUaConnector

plugin = ConnectorPlugin(
    name="opcua",
    device_model=OpcUaDevice,
    source_model=OpcUaPoint,
    connector="plantlink.connectors.opcua.client:OpcUaConnector",
    warnings=device_warnings,
)

__all__ = ["OpcUaConnector", "OpcUaDevice", "OpcUaPoint", "plugin"]


def __getattr__(name: str) -> Any:
    if name == "OpcUaConnector":
        return plugin.connector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
