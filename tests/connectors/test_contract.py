"""The built-in connectors pass the connector contract suite (``plantlink.testing.connector``) against real
servers on loopback: Modbus against a pymodbus server, OPC UA against an asyncua server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pyarrow as pa
import pytest_asyncio
from asyncua import ua

from plantlink import plugins
from plantlink.connectors.base import Connector, ConnectorPlugin
from plantlink.model import parse_plant
from plantlink.testing.connector import ConnectorContract
from tests.conftest import _free_port
from tests.connectors.modbus_cases import SimServer, points_of
from tests.connectors.test_modbus_connector import PLANT, UNITS
from tests.connectors.test_opcua_support import plant_text
from tests.servers import OpcUaTestServer


def _connector(text: str, device: str, sink: Callable[[pa.RecordBatch], None]) -> Connector:
    """The connector of ``device`` in the plant ``text``, made by its plugin found through the registry."""
    plant = parse_plant(text)
    dev = plant.devices[device]
    plugin: ConnectorPlugin = plugins.load(plugins.CONNECTORS, dev.protocol)
    return plugin.connector(device, dev.config, points_of(plant, device), sink)


class TestModbusConnector(ConnectorContract):
    @pytest_asyncio.fixture
    async def server(self) -> AsyncIterator[SimServer]:
        srv = await SimServer(_free_port(), UNITS).start()
        yield srv
        await srv.stop()

    def make_connector(self, server: SimServer, sink: Callable[[pa.RecordBatch], None]) -> Connector:
        text = PLANT.format(host="127.0.0.1", port=server.port, poll="50ms").replace("#EXTRA\n", "")
        return _connector(text, "plc", sink)

    async def set_value(self, server: SimServer, value: int) -> None:
        server.set("holding", 0, [value])  # the first tag, speed: holding register 0


OPCUA_TAGS = """
- {name: temp, source: {device: ua, node: "ns=2;s=Temp"}}
- {name: count, type: int, source: {device: ua, node: "ns=2;s=Count"}}
- {name: recipe, type: string, source: {device: ua, node: "ns=2;s=Recipe"}}
"""


class TestOpcUaConnector(ConnectorContract):
    @pytest_asyncio.fixture
    async def server(self) -> AsyncIterator[OpcUaTestServer]:
        srv = OpcUaTestServer(_free_port(), {"Temp": (20.0, ua.VariantType.Double), "Count": (7, ua.VariantType.Int32),
                                         "Recipe": ("A", ua.VariantType.String)})
        await srv.start()
        yield srv
        await srv.stop()

    def make_connector(self, server: OpcUaTestServer, sink: Callable[[pa.RecordBatch], None]) -> Connector:
        return _connector(plant_text(server.port, OPCUA_TAGS), "ua", sink)

    async def set_value(self, server: OpcUaTestServer, value: int) -> None:
        await server.set("Temp", float(value))
