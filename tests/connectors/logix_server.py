"""Logix servers nobody on the project wrote, for the Logix connector's tests, on free loopback ports.

``CmServer``: cm-ethernetip's Logix tag server (pure Python, asyncio, in the test's event loop) through
``plantlink.sim.logixserver.Controller``, which works around two of its faults in the server (a structure's
reply without ``0x02A0``, the tag-list upload beyond one reply; docs/logix.md). Its tags' bytes are the
memory the tests check against (packed here with ``struct``, little-endian as Logix is).

``CpppoServer``: cpppo's EtherNet/IP Logix simulator (``python -m cpppo.server.enip``) as a subprocess; its
memory is set and read with cpppo's own client (``cpppo.server.enip.client``), not with pylogix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from typing import Any

from plantlink.sim.logixserver import Controller


class CmServer:
    """``start()`` / ``stop()`` bring the server up and down on the same port; the tags outlive a restart."""

    def __init__(self, port: int, tags: dict[str, tuple[str, int]]):
        self.port = port
        self.controller = Controller("plantlink-test")
        for name, (type_, count) in tags.items():
            self.controller.add(name, type_, count)

    async def start(self) -> CmServer:
        await self.controller.start("127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        await self.controller.stop()


class CpppoServer:
    """cpppo's simulator serving ``tags`` (``name=TYPE[count]`` specs) on ``port``."""

    def __init__(self, port: int, tags: list[str]):
        self.port, self.tags = port, tags
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> CpppoServer:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen([sys.executable, "-m", "cpppo.server.enip", "--address",
                                      f"127.0.0.1:{self.port}", *self.tags],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        from tests.waiting import wait_for

        await wait_for(self._listening, timeout=60)
        return self

    async def _listening(self) -> bool:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        w.close()
        with contextlib.suppress(OSError):
            await w.wait_closed()
        return True

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)

    def _client(self) -> Any:
        from cpppo.server.enip.get_attribute import proxy_simple

        return proxy_simple(host="127.0.0.1", port=self.port, timeout=10)

    def _write(self, items: list[tuple[str, Any, str]]) -> None:
        # cpppo's own client: "name=(TYPE)value" operations, parsed and sent by cpppo
        from cpppo.server.enip import client

        ops = [f"{name}=({type_}){value}" for name, value, type_ in items]
        with client.connector(host="127.0.0.1", port=self.port, timeout=10) as conn:
            for _, _, _, _, _, res in conn.pipeline(operations=client.parse_operations(ops), depth=1):
                if res is not True:
                    raise RuntimeError(f"cpppo's client could not write: {res!r}")

    async def write(self, items: list[tuple[str, Any, str]]) -> None:
        await asyncio.to_thread(self._write, items)

    def _read(self, names: list[str]) -> list[Any]:
        from cpppo.server.enip import client

        with client.connector(host="127.0.0.1", port=self.port, timeout=10) as conn:
            return [res for _, _, _, _, _, res in conn.pipeline(operations=client.parse_operations(names),
                                                                    depth=1)]

    async def read(self, names: list[str]) -> list[Any]:
        return await asyncio.to_thread(self._read, names)
