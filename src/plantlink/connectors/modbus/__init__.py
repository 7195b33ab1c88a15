"""Modbus TCP connector: block-coalesced polling at per-point rates, every type and word/byte order.

Importing this package (the plugin: config models and the static check) does not import pymodbus, numpy or
pyarrow; ``ModbusConnector`` (``plugin.connector``) does, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantlink.connectors.modbus.config import ModbusDevice, ModbusPoint
from plantlink.connectors.modbus.plan import check_points
from plantlink.connectors.plugin import ConnectorPlugin

if TYPE_CHECKING:
    from plantlink.connectors.modbus.client import ModbusConnector

plugin = ConnectorPlugin(
    name="modbus",
    device_model=ModbusDevice,
    source_model=ModbusPoint,
    connector="plantlink.connectors.modbus.client:ModbusConnector",
    check=check_points,
)

__all__ = ["ModbusConnector", "ModbusDevice", "ModbusPoint", "plugin"]


def __getattr__(name: str) -> Any:
    if name == "ModbusConnector":
        return plugin.connector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
