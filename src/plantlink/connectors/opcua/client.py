"""(being written) OPC UA connector."""

from plantlink.connectors.base import Connector


class OpcUaConnector(Connector):  # placeholder until the implementation lands
    protocol = "opcua"

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        return None
