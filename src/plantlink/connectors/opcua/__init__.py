"""OPC UA connector: subscriptions with sampling intervals and deadbands, reconnect and re-subscribe."""

from plantlink.connectors.base import ConnectorPlugin
from plantlink.connectors.opcua.client import OpcUaConnector
from plantlink.connectors.opcua.config import OpcUaDevice, OpcUaPoint
from plantlink.connectors.opcua.security import device_warnings

plugin = ConnectorPlugin(
    name="opcua",
    device_model=OpcUaDevice,
    source_model=OpcUaPoint,
    connector=OpcUaConnector,
    warnings=device_warnings,
)

__all__ = ["OpcUaConnector", "OpcUaDevice", "OpcUaPoint", "plugin"]
