"""A real S7 server for the S7 connector's tests: python-snap7's ``snap7.server.Server`` on a free port, its
DB, M, I and Q areas plain bytearrays the test writes into (and reads what the connector wrote)."""

from __future__ import annotations

import asyncio
import logging

from snap7.server import Server
from snap7.type import SrvArea

logging.getLogger("snap7").setLevel(logging.WARNING)


class S7TestServer:
    """``start()`` / ``stop()`` bring the server up and down on the same port; the areas outlive a restart."""

    def __init__(self, port: int, dbs: dict[int, int] | None = None, area_size: int = 64):
        self.port = port
        self.dbs = {n: bytearray(size) for n, size in (dbs or {1: 256}).items()}
        self.m, self.i, self.q = bytearray(area_size), bytearray(area_size), bytearray(area_size)
        self._srv: Server | None = None

    def _up(self) -> None:
        srv = Server(log=False)
        for n, buf in self.dbs.items():
            srv.register_area(SrvArea.DB, n, buf)
        srv.register_area(SrvArea.MK, 0, self.m)
        srv.register_area(SrvArea.PE, 0, self.i)
        srv.register_area(SrvArea.PA, 0, self.q)
        srv.start_to("127.0.0.1", self.port)
        self._srv = srv

    def _down(self) -> None:
        srv, self._srv = self._srv, None
        if srv is not None:
            srv.stop()
            srv.destroy()

    async def start(self) -> S7TestServer:
        await asyncio.to_thread(self._up)
        return self

    async def stop(self) -> None:
        await asyncio.to_thread(self._down)
