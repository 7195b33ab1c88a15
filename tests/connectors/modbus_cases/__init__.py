"""Table-driven Modbus cases (one folder each) and the real pymodbus server that plays them.

``registers.yaml`` maps a unit id to its tables; each table is a list of entries::

    1:
      holding:
        - {address: 0, words: [0x3F80, 0x0000]}                    # raw registers, as written
        - {address: 10, type: float32, value: 1.5, word_order: little, byte_order: big}
        - {address: 20, string: "HELLO", length: 4, byte_order: little}
      coil:
        - {address: 0, bits: [true, false, true]}

Typed entries are packed here with Python's ``struct`` (independently of the connector's numpy codec).
Addresses not listed are not served: reading them gives Modbus exception 2 (illegal address).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from plantlink.samples import values_of

STRUCT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
          "float32": ">f", "float64": ">d"}
TABLES = ("coil", "discrete", "holding", "input")
_KEY = {"coil": "c", "discrete": "d", "holding": "h", "input": "i"}


def order_words(data: bytes, word_order: str = "big", byte_order: str = "big") -> list[int]:
    """Big-endian bytes -> registers in address order (reference implementation for the tests)."""
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if byte_order == "little":
        words = [w[::-1] for w in words]
    if word_order == "little":
        words.reverse()
    return [int.from_bytes(w, "big") for w in words]


def pack(type_: str, value: Any, word_order: str = "big", byte_order: str = "big") -> list[int]:
    return order_words(struct.pack(STRUCT[type_], value), word_order, byte_order)


def pack_string(text: str, length: int, word_order: str = "big", byte_order: str = "big") -> list[int]:
    return order_words(text.encode().ljust(2 * length, b"\x00"), word_order, byte_order)


def entry_values(entry: Mapping[str, Any]) -> list[int] | list[bool]:
    """The registers (or bits) of one ``registers.yaml`` entry."""
    wo, bo = entry.get("word_order", "big"), entry.get("byte_order", "big")
    if "words" in entry:
        return [int(w) for w in entry["words"]]
    if "bits" in entry:
        return [bool(b) for b in entry["bits"]]
    if "string" in entry:
        return pack_string(entry["string"], int(entry["length"]), wo, bo)
    return pack(entry["type"], entry["value"], wo, bo)


class SimServer:
    """A pymodbus TCP server on 127.0.0.1:``port`` serving ``units`` (unit id -> table -> entries)."""

    def __init__(self, port: int, units: Mapping[int, Mapping[str, list[Mapping[str, Any]]]]):
        self.port = port
        self.units = units
        self.server: ModbusTcpServer | None = None

    def _device(self, unit: int, tables: Mapping[str, list[Mapping[str, Any]]]) -> SimDevice:
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)} (known: {TABLES})")
        blocks: list[list[SimData]] = []
        for table in TABLES:
            bits = table in ("coil", "discrete")
            data = []
            for e in sorted(tables.get(table, []), key=lambda e: int(e["address"])):
                vals = entry_values(e)
                data.append(SimData(int(e["address"]), values=vals, datatype=DataType.BITS if bits
                                    else DataType.REGISTERS))
            if not data:  # pymodbus needs one entry per table: serve something far away
                data = [SimData(65520, values=[False] * 16, datatype=DataType.BITS)] if bits else \
                    [SimData(0, datatype=DataType.INVALID)]
            blocks.append(data)
        return SimDevice(id=unit, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]))

    async def start(self) -> SimServer:
        devices = [self._device(int(u), t) for u, t in self.units.items()]
        self.server = ModbusTcpServer(devices, address=("127.0.0.1", self.port))
        await self.server.serve_forever(background=True)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    def _block(self, table: str, unit: int) -> tuple[int, int, list[int], list[int]]:
        assert self.server is not None
        return self.server.context.devices[unit].block[_KEY[table]]  # type: ignore[union-attr]

    def set(self, table: str, address: int, values: list[int] | list[bool], unit: int = 1) -> None:
        """Change served values in place (registers, or bits of a coil/discrete table)."""
        start, _, regs, _ = self._block(table, unit)
        for i, v in enumerate(values):
            if table in ("coil", "discrete"):
                word, bit = divmod(address + i, 16)
                k = word - start
                regs[k] = (regs[k] | (1 << bit)) if v else (regs[k] & ~(1 << bit))
            else:
                regs[address - start + i] = int(v)

    def get(self, table: str, address: int, count: int = 1, unit: int = 1) -> list[int]:
        start, _, regs, _ = self._block(table, unit)
        if table in ("coil", "discrete"):
            return [(regs[(address + i) // 16 - start] >> ((address + i) % 16)) & 1 for i in range(count)]
        return list(regs[address - start:address - start + count])


# ------------------------------------------------------------------------------ plant -> points, sinks


def points_of(plant: Any, device: str, first_id: int = 1) -> list[Any]:
    """The Points of ``device`` in a parsed plant, with tag ids numbered from ``first_id`` in file order."""
    from plantlink.connectors.base import Point

    return [Point(first_id + i, t.path, t.tag, t.source) for i, t in enumerate(plant.tags_of_device(device))]


class Collector:
    """A batch sink that keeps every batch; ``latest`` folds them into tag id -> (value, quality)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def __call__(self, batch: Any) -> None:
        self.batches.append(batch)

    def rows(self) -> list[tuple[int, int, Any, int]]:
        """(tag_id, ts_us, value, quality) of every sample so far, in arrival order."""
        out = []
        for b in self.batches:
            ids = b.column("tag_id").to_pylist()
            ts = b.column("ts").cast("int64").to_pylist()
            vals = values_of(b)
            qs = b.column("quality").to_pylist()
            out.extend(zip(ids, ts, vals, qs, strict=True))
        return out

    def latest(self) -> dict[int, tuple[Any, int]]:
        return {tid: (v, q) for tid, _, v, q in self.rows()}

    def counts(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for tid, *_ in self.rows():
            out[tid] = out.get(tid, 0) + 1
        return out
