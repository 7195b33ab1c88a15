"""Real protocol servers for tests: a pymodbus TCP server and an asyncua server on loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


class ModbusTestServer:
    """A Modbus TCP server with ``registers`` holding registers (and as many coils) starting at address 0.

    Values are set by clients (the tests write them with a real pymodbus client), as on a real PLC.
    """

    def __init__(self, port: int, registers: int = 200, device_id: int = 1):
        self.port = port
        self.registers = registers
        self.device_id = device_id
        self.server: ModbusTcpServer | None = None
        self._task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        device = SimDevice(
            id=self.device_id,
            simdata=(
                [SimData(address=0, count=self.registers, values=False, datatype=DataType.BITS)],
                [SimData(address=0, count=self.registers, values=False, datatype=DataType.BITS)],
                [SimData(address=0, count=self.registers, values=0, datatype=DataType.REGISTERS)],
                [SimData(address=0, count=self.registers, values=0, datatype=DataType.REGISTERS)],
            ),
        )
        self.server = ModbusTcpServer(context=device, address=("127.0.0.1", self.port))
        await self.server.listen()

    async def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.shutdown()
            self.server = None


class OpcUaTestServer:
    """An asyncua server with writable variables ``ns=2;s=<name>`` of the given variant types."""

    def __init__(self, port: int, variables: dict[str, tuple[Any, ua.VariantType]]):
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/test/"
        self.variables = variables
        self.server: Server | None = None
        self.nodes: dict[str, Any] = {}

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace("urn:plantlink:test")
        folder = await server.nodes.objects.add_folder(ns, "Test")
        for name, (value, vtype) in self.variables.items():
            node = await folder.add_variable(ua.NodeId(name, ns), name, value, varianttype=vtype)
            await node.set_writable()
            self.nodes[name] = node
        await server.start()
        self.server = server

    async def set(self, name: str, value: Any) -> None:
        node = self.nodes[name]
        vtype = self.variables[name][1]
        await node.write_value(ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=datetime.now(UTC)))

    async def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.stop()
            self.server = None
