"""The simulator's S7 PLC: python-snap7's ``snap7.server.Server`` holding the tags of one ``s7`` device.

Each DB, and the M, I and Q areas, used by the device's tags is registered as a bytearray sized to its last
tag. ``refresh`` writes the simulation's current values (the tag's scaling inverted, rounded and clipped for
integer types; big-endian, S7 strings with their length bytes) into the areas. A client's write is found
there at the next refresh (the bytes of a writable tag differ from what the simulator last put there) and
handed to ``sink(tag_path, value)``; the simulation applies it at its next step. This encoder is written apart
from the connector's codec, so end-to-end tests check one against the other.

Imported only when a plant has an ``s7`` device (snap7 is the optional ``s7`` extra).
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections.abc import Callable, Sequence
from typing import cast

from snap7.server import Server
from snap7.type import SrvArea

from plantlink.connectors.s7.address import S7Address
from plantlink.connectors.s7.config import S7Device, S7Point
from plantlink.errors import PlantlinkError
from plantlink.model.schema import Tag
from plantlink.sim.machine import Value
from plantlink.sim.plant import Binding

log = logging.getLogger("plantlink.sim")

WriteSink = Callable[[str, Value], None]
SRV_AREA = {"DB": SrvArea.DB, "M": SrvArea.MK, "I": SrvArea.PE, "Q": SrvArea.PA}
FMT = {"BYTE": "B", "USINT": "B", "SINT": "b", "INT": "h", "UINT": "H", "WORD": "H", "DINT": "i",
       "UDINT": "I", "DWORD": "I", "REAL": "f", "LREAL": "d"}


def _int_range(fmt: str) -> tuple[int, int]:
    bits = struct.calcsize(fmt) * 8
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if fmt.islower() else (0, 2 ** bits - 1)


def pack(loc: S7Address, tag: Tag, value: Value, old: bytes) -> bytes:
    """The bytes at ``loc`` holding ``value`` (``old``: the current bytes, for a bit's neighbours)."""
    if loc.type == "BOOL":
        mask = 1 << (loc.bit or 0)
        return bytes([(old[0] | mask) if value else (old[0] & ~mask & 0xFF)])
    if loc.type in ("STRING", "CHAR"):
        raw = str(value).encode("latin-1", "replace")
        if loc.type == "CHAR":
            return (raw[:1] or b" ")
        n = loc.length or 254
        raw = raw[:n]
        return bytes([n, len(raw)]) + raw + bytes(n - len(raw))
    v = float(cast(float, value))
    s = tag.scaling
    if s is not None:
        v = s.raw_low + (v - s.eng_low) * (s.raw_high - s.raw_low) / (s.eng_high - s.eng_low)
    fmt = FMT[loc.type]
    if fmt in "fd":
        return struct.pack(">" + fmt, v)
    lo, hi = _int_range(fmt)
    return struct.pack(">" + fmt, 0 if math.isnan(v) else min(max(round(v), lo), hi))


def unpack(loc: S7Address, tag: Tag, data: bytes) -> Value:
    """The engineering value in ``data`` (the inverse of ``pack``)."""
    if loc.type == "BOOL":
        return bool(data[0] >> (loc.bit or 0) & 1)
    if loc.type == "CHAR":
        return data[:1].decode("latin-1")
    if loc.type == "STRING":
        return data[2:2 + min(data[1], data[0])].decode("latin-1")
    (raw,) = struct.unpack(">" + FMT[loc.type], data)
    v = float(raw)
    s = tag.scaling
    if s is not None:
        v = s.eng_low + (v - s.raw_low) * (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    return int(v) if tag.type == "int" and v == round(v) else v


class S7SimServer:
    """An S7 PLC (snap7 server) serving the tags of one ``s7`` device on ``host:port``."""

    def __init__(self, device_id: str, config: S7Device, bindings: Sequence[Binding], sink: WriteSink,
                 host: str = "127.0.0.1", port: int | None = None):
        self.device_id, self.sink, self.host = device_id, sink, host
        self.port = config.port if port is None else port
        self.slots: list[tuple[Binding, S7Address]] = []
        sizes: dict[tuple[str, int], int] = {}
        for b in bindings:
            loc = cast(S7Point, b.tag.source).location
            self.slots.append((b, loc))
            key = (loc.area, loc.db)
            sizes[key] = max(sizes.get(key, 1), loc.end)
        self.areas = {key: bytearray(size) for key, size in sizes.items()}
        self._served: dict[int, bytes] = {}  # slot -> the bytes the simulator last put there
        self.server: Server | None = None

    def refresh(self) -> None:
        srv = self.server
        for k, (b, loc) in enumerate(self.slots):
            buf = self.areas[(loc.area, loc.db)]
            if srv is not None:
                srv.lock_area(SRV_AREA[loc.area], loc.db)
            try:
                now = bytes(buf[loc.start:loc.end])
                served = self._served.get(k)
                if b.signal.writable and served is not None and now != served:
                    self._client_wrote(b, loc, now, served)
                fresh = pack(loc, b.tag.tag, b.value(), now)
                buf[loc.start:loc.end] = fresh
                self._served[k] = fresh
            finally:
                if srv is not None:
                    srv.unlock_area(SRV_AREA[loc.area], loc.db)

    def _client_wrote(self, b: Binding, loc: S7Address, now: bytes, served: bytes) -> None:
        if loc.type == "BOOL" and (now[0] ^ served[0]) & (1 << (loc.bit or 0)) == 0:
            return  # another bit of the byte changed
        try:
            self.sink(b.path, unpack(loc, b.tag.tag, now))
        except (PlantlinkError, KeyError, ValueError) as exc:
            log.warning("s7 write to %s refused: %s", b.path, exc)

    def _up(self) -> None:
        srv = Server(log=False)
        for (area, db), buf in self.areas.items():
            srv.register_area(SRV_AREA[area], db, buf)
        try:
            srv.start_to(self.host, self.port)
        except Exception as exc:
            raise PlantlinkError(f"device {self.device_id}: cannot listen on {self.host}:{self.port} "
                                 f"(port in use? override it with ports={{...}})") from exc
        self.server = srv

    async def start(self) -> None:
        self.refresh()
        await asyncio.to_thread(self._up)
        self.refresh()

    async def stop(self) -> None:
        srv, self.server = self.server, None
        if srv is not None:
            await asyncio.to_thread(srv.stop)
            srv.destroy()

    @property
    def endpoint(self) -> str:
        return f"s7://{self.host}:{self.port}"

