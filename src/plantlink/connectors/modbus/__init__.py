"""Modbus TCP connector: block-coalesced polling at per-point rates, every type and word/byte order."""

from plantlink.connectors.base import ConnectorPlugin
from plantlink.connectors.modbus.client import ModbusConnector
from plantlink.connectors.modbus.config import ModbusDevice, ModbusPoint
from plantlink.connectors.modbus.plan import check_points

plugin = ConnectorPlugin(
    name="modbus",
    device_model=ModbusDevice,
    source_model=ModbusPoint,
    connector=ModbusConnector,
    check=check_points,
)

__all__ = ["ModbusConnector", "ModbusDevice", "ModbusPoint", "plugin"]
