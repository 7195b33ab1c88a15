"""Modbus TCP connector: block-coalesced polling at per-point rates, every type and word/byte order.

One supervisor task owns the connection: it connects, starts one poll loop per poll period, and when the
connection is lost (closed by the device, a request timing out) it stops the loops, marks every point
BAD once, and reconnects with exponential back-off (``reconnect_min`` doubling up to ``reconnect_max``).
Health goes RECONNECTING at the first failure and DOWN after ``polling.DOWN_AFTER`` failures in a row; it is
CONNECTED once the device answers a request (a TCP accept alone does not count: a device that accepts but
never answers keeps timing out and goes DOWN). Requests time out after the device's ``timeout``
(no retries), which counts as a lost connection.

A Modbus exception response (illegal address, device failure, ...) is not a lost connection: the
points of that block are BAD with the exception named in ``health.last_error``; the rest keeps flowing.
So is a reply that breaks the protocol (another function code than the request's, fewer or more registers
than asked for): its block is BAD, never decoded as if it were the answer. Each is counted in the device's
health (``exception_replies``, ``invalid_replies``).
Each poll cycle reads its blocks into one register buffer and one bit buffer, decodes them vectorised
(``codec.RegisterDecoder``), runs the tags' processing and emits one numeric batch (plus one text batch
when the group has string tags).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from plantlink.connectors.base import BatchSink, ConnectionLost, DeviceState, Point
from plantlink.connectors.loop import Lost
from plantlink.connectors.modbus.codec import RegisterDecoder, encode_raw, to_raw
from plantlink.connectors.modbus.config import ModbusDevice, ModbusPoint
from plantlink.connectors.modbus.plan import Block, PollGroup, check_points, plan_reads, unit_of
from plantlink.connectors.polling import PollingConnector
from plantlink.connectors.processing import PointProcessor
from plantlink.connectors.typed import source_of, typed_setup
from plantlink.errors import DeviceUnavailable, PointError
from plantlink.samples import Quality, concat, now_us, text_batch

log = logging.getLogger("plantlink.connectors.modbus")



def describe_exception(pdu: ModbusPDU, block: Block) -> str:
    code = int(pdu.exception_code)
    try:
        name = ExcCodes(code).name
    except ValueError:
        name = "unknown"
    return (f"{block.table} {block.start}..{block.start + block.count - 1} (unit {block.unit_id}): "
            f"Modbus exception {code} ({name})")


#: The function code of the read of each table (a reply must carry it, or it with 0x80 for an exception).
READ_FUNCTION = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


def reply_problem(pdu: ModbusPDU, block: Block) -> tuple[str, str] | None:
    """(``"exception"`` or ``"invalid"``, message) when ``pdu`` is not a usable answer to the read of
    ``block``, else None."""
    where = f"{block.table} {block.start}..{block.start + block.count - 1} (unit {block.unit_id})"
    want, got = READ_FUNCTION[block.table], int(pdu.function_code) & 0x7F
    if got != want:
        return "invalid", f"{where}: the device answered with function code {got}, not {want}: reply ignored"
    if pdu.isError():
        return "exception", describe_exception(pdu, block)
    n = len(pdu.bits) if block.is_bits else len(pdu.registers)
    if n < block.count or (not block.is_bits and n != block.count):
        return "invalid", f"{where}: the reply holds {n} {'bits' if block.is_bits else 'registers'}, " \
                          f"not {block.count}: reply ignored"
    return None


async def read_block(client: AsyncModbusTcpClient, block: Block) -> ModbusPDU:
    """Issue the read of ``block``; connection-level failures become ConnectionLost."""
    fn = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }[block.table]
    try:
        return await fn(block.start, count=block.count, device_id=block.unit_id)
    except (TimeoutError, ModbusException, OSError) as exc:
        raise ConnectionLost(f"read of {block.table} {block.start} (unit {block.unit_id}) failed: {exc}") from exc


class Poller:
    """One poll group compiled for speed: buffers, decoders and tag processing of its points."""

    def __init__(self, group: PollGroup, points: Sequence[Point]):
        self.group, self._points = group, points
        self._split: set[int] = set()  # blocks the device refused as a whole: read their points one by one
        self.period = group.period
        self.blocks = group.blocks
        reg_rows: list[tuple[int, ModbusPoint, int, int]] = []  # (point, source, buffer offset, block)
        bit_rows: list[tuple[int, int, int]] = []  # (point, buffer offset, block)
        self.bases: list[int] = []
        regs = bits = 0
        for k, b in enumerate(group.blocks):
            base = bits if b.is_bits else regs
            self.bases.append(base)
            for i in b.members:
                src = _source(points[i])
                if b.is_bits:
                    bit_rows.append((i, base + src.address - b.start, k))
                else:
                    reg_rows.append((i, src, base + src.address - b.start, k))
            if b.is_bits:
                bits += b.count
            else:
                regs += b.count
        self.regs = np.zeros(regs, dtype=np.uint16)
        self.bits = np.zeros(bits, dtype=bool)
        self.decoder = RegisterDecoder([r[1] for r in reg_rows], [r[2] for r in reg_rows])
        text = set(self.decoder.string_rows)
        num_rows = [r for j, r in enumerate(reg_rows) if j not in text]
        self.num_regs = np.array([j for j in range(len(reg_rows)) if j not in text], dtype=np.intp)
        self.bit_gather = np.array([r[1] for r in bit_rows], dtype=np.intp)
        numeric = [points[r[0]] for r in num_rows] + [points[r[0]] for r in bit_rows]
        self.processor = PointProcessor(numeric)
        self.num_idx = np.arange(len(numeric), dtype=np.intp)
        self.num_block = np.array([r[3] for r in num_rows] + [r[2] for r in bit_rows], dtype=np.intp)
        self.text_ids = [points[reg_rows[j][0]].tag_id for j in self.decoder.string_rows]
        self.text_block = np.array([reg_rows[j][3] for j in self.decoder.string_rows], dtype=np.intp)
        self.all_ids = [points[i].tag_id for i in group.members]
        self.failing: dict[int, str] = {}  # block index -> its current exception

    @property
    def size(self) -> int:
        return len(self.all_ids)

    async def read(self, client: AsyncModbusTcpClient) -> tuple[np.ndarray, np.ndarray, list[str], Counter[str]]:
        """Read every block; returns (block ok, block timestamps, new errors, unusable replies by kind).
        Raises ConnectionLost."""
        n = len(self.blocks)
        ok = np.zeros(n, dtype=bool)
        ts = np.zeros(n, dtype=np.int64)
        errors: list[str] = []
        refused: Counter[str] = Counter()
        for k, b in enumerate(self.blocks):
            pdu = await read_block(client, b)
            ts[k] = now_us()
            data: Sequence[Any] = pdu.bits if b.is_bits else pdu.registers
            problem = reply_problem(pdu, b)
            if problem is not None and problem[0] == "exception" and len(b.members) > 1 \
                    and int(pdu.exception_code) == ExcCodes.ILLEGAL_ADDRESS:
                self._split.add(k)  # a hole in the device's map inside a joined block: split it
            if problem is not None:
                kind, msg = problem
                refused[kind] += 1
                if self.failing.get(k) != msg:
                    self.failing[k] = msg
                    errors.append(msg)
                continue
            self.failing.pop(k, None)
            ok[k] = True
            base = self.bases[k]
            if b.is_bits:
                self.bits[base:base + b.count] = data[:b.count]
            else:
                self.regs[base:base + b.count] = data
        if self._split:
            self._resplit()
        return ok, ts, errors, refused

    def _resplit(self) -> None:
        """Replace each refused joined block by one read per point (the device has unmapped registers in the
        gap). Done once per block; the points the device does serve then read GOOD, the others stay BAD."""
        blocks: list[Block] = []
        for k, b in enumerate(self.blocks):
            if k not in self._split:
                blocks.append(b)
                continue
            log.info("%s %d..%d (unit %d) refused as a whole: reading its %d points one by one", b.table, b.start,
                     b.start + b.count - 1, b.unit_id, len(b.members))
            for i in b.members:
                src = _source(self._points[i])
                blocks.append(Block(b.unit_id, b.table, src.address, src.count, (i,)))
        self.__init__(PollGroup(self.period, tuple(blocks)), self._points)  # type: ignore[misc]

    def batches(self, ok: np.ndarray, ts: np.ndarray) -> list[Any]:
        """Decode the buffers and build this cycle's batch (numeric, then text samples if any): one at most."""
        out = []
        if len(self.num_idx):
            raw = np.concatenate([self.decoder.decode(self.regs)[self.num_regs], self.bits[self.bit_gather]])
            q = np.where(ok[self.num_block], np.uint8(Quality.GOOD), np.uint8(Quality.BAD))
            out.append(self.processor.process(self.num_idx, raw, q, ts[self.num_block]))
        if self.text_ids:
            good = ok[self.text_block]
            vals = [s if g else None for s, g in zip(self.decoder.strings(self.regs), good, strict=True)]
            q = np.where(good, np.uint8(Quality.GOOD), np.uint8(Quality.BAD))
            out.append(text_batch(self.text_ids, ts[self.text_block].tolist(), vals, q.tolist()))
        return [concat(out)] if out else []

    def bad_batches(self, ts: int) -> list[Any]:
        """Every point of the group BAD at ``ts`` (the device is gone)."""
        n = len(self.blocks)
        return self.batches(np.zeros(n, dtype=bool), np.full(n, ts, dtype=np.int64))



def _source(point: Point) -> ModbusPoint:
    return source_of("modbus", point, ModbusPoint)


class ModbusConnector(PollingConnector):
    protocol = "modbus"
    logger = log

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        super().__init__(device_id, config, points, sink)
        self.device, sources = typed_setup("modbus", device_id, config, ModbusDevice, self.points, ModbusPoint,
            check_points)
        self.plan = plan_reads(self.device, sources)
        self.pollers = [Poller(g, self.points) for g in self.plan]
        self._client: AsyncModbusTcpClient | None = None

    # ------------------------------------------------------------------------------ lifecycle

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def _connect(self) -> str | None:
        dev = self.device
        self._lost = lost = Lost()

        def on_connect(up: bool) -> None:
            if not up:
                lost.set("connection closed by the device")

        client = AsyncModbusTcpClient(dev.host, port=dev.port, timeout=dev.timeout, retries=0,
                                      reconnect_delay=0, trace_connect=on_connect)
        self._client = client
        with contextlib.suppress(TimeoutError, OSError, ModbusException):
            if await asyncio.wait_for(client.connect(), timeout=dev.timeout * 2) and client.connected:
                return None
        return f"cannot connect to {dev.host}:{dev.port} (refused or no answer within {dev.timeout:g}s)"

    # ---------------------------------------------------------------------------------- polling

    def _cycle_of(self, poller: Poller, lost: Lost) -> Callable[[], Awaitable[None]]:
        client = self._client
        assert client is not None
        return functools.partial(self._cycle, client, poller, lost)

    async def _cycle(self, client: AsyncModbusTcpClient, poller: Poller, lost: Lost) -> None:
        ok, ts, errors, refused = await poller.read(client)
        if lost.is_set():
            return  # the connection was dropped meanwhile: the BAD batch is (being) sent instead
        self._answered()
        self.health.invalid_replies += refused["invalid"]
        self.health.exception_replies += refused["exception"]
        self._problems(errors)
        for batch in poller.batches(ok, ts):
            self.emit(batch)

    # ------------------------------------------------------------------------------------ write

    async def write(self, point: Point, value: Any) -> None:
        """Write ``value`` (in the tag's engineering units) to ``point``: holding registers or a coil."""
        src = _source(point)
        if not point.tag.writable:
            raise PointError(f"{point.path}: the tag is not writable (set writable: true in the plant model)")
        if src.table in ("input", "discrete"):
            raise PointError(f"{point.path}: table {src.table!r} is read-only in Modbus")
        client = self._client
        if client is None or not client.connected or self.health.state != DeviceState.CONNECTED:
            raise DeviceUnavailable(f"{point.path}: device {self.device_id} is not connected")
        unit = unit_of(self.device, src)
        try:
            if src.table == "coil":
                pdu = await client.write_coil(src.address, bool(value), device_id=unit)
            else:
                regs = await self._encode(client, point, src, value)
                pdu = await client.write_registers(src.address, regs, device_id=unit)
        except (TimeoutError, ModbusException, OSError) as exc:
            raise DeviceUnavailable(f"{point.path}: write to device {self.device_id} failed: {exc}") from exc
        want = 5 if src.table == "coil" else 16
        if int(pdu.function_code) & 0x7F != want:
            self.health.invalid_replies += 1
            raise PointError(f"{point.path}: the device answered the write (function code {want}) with function "
                             f"code {int(pdu.function_code) & 0x7F}: not confirmed")
        if pdu.isError():
            block = Block(unit, src.table, src.address, src.count, ())
            raise PointError(f"{point.path}: write refused: {describe_exception(pdu, block)}")

    async def _encode(self, client: AsyncModbusTcpClient, point: Point, src: ModbusPoint,
                      value: Any) -> list[int]:
        if src.type == "string":
            return encode_raw(src, str(value), point.path)
        if src.type == "bool":
            on = bool(value)
            if src.bit is None:
                return [1 if on else 0]
            return [await self._with_bit(client, point, src, on)]
        return encode_raw(src, to_raw(src, _untag(point, float(value))), point.path)

    async def _with_bit(self, client: AsyncModbusTcpClient, point: Point, src: ModbusPoint, on: bool) -> int:
        """Read-modify-write of one bit of a holding register (not atomic against other masters)."""
        pdu = await client.read_holding_registers(src.address, count=1, device_id=unit_of(self.device, src))
        problem = reply_problem(pdu, Block(unit_of(self.device, src), "holding", src.address, 1, ()))
        if problem is not None:
            raise PointError(f"{point.path}: cannot read the register to set bit {src.bit}: {problem[1]}")
        reg = int(pdu.registers[0])
        swap = src.byte_order == "little"
        val = ((reg & 0xFF) << 8 | reg >> 8) if swap else reg
        mask = 1 << (src.bit or 0)
        val = (val | mask) if on else (val & ~mask & 0xFFFF)
        return ((val & 0xFF) << 8 | val >> 8) if swap else val


def _untag(point: Point, value: float) -> float:
    """Invert the tag's linear scaling: engineering value -> the source's value."""
    s = point.tag.scaling
    if s is None:
        return value
    gain = (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    if gain == 0:
        raise PointError(f"{point.path}: the tag's scaling is flat (eng_low == eng_high); cannot invert it")
    return (value - (s.eng_low - s.raw_low * gain)) / gain
