"""(being written) Modbus TCP connector."""

from plantlink.connectors.base import Connector


class ModbusConnector(Connector):  # placeholder until the implementation lands
    protocol = "modbus"

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        return None
