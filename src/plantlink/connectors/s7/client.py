"""S7 connector (python-snap7's asyncio client): range-coalesced multi-item reads at per-point rates.

One supervisor task owns the connection: it connects (negotiating the PDU size), plans the reads for the PDU
the CPU granted (``plan.plan_reads``), starts one poll loop per poll period, and when the connection is lost
(closed, a request unanswered within ``timeout``) it stops the loops, marks every point BAD once, and
reconnects with exponential back-off (``reconnect_min`` doubling up to ``reconnect_max``). Health goes
RECONNECTING at the first failure and DOWN after ``polling.DOWN_AFTER`` failures in a row.

A read item the CPU refuses (an address outside a DB, a DB that does not exist) is not a lost connection:
when a multi-item request fails, its items are read one by one (and stay so from then on); a refused range of
several tags is split into one range per tag (``plan.split_range``) and read again, so the refused tags alone
are BAD (counted in ``exception_replies``, the reason naming the tag and its address in ``last_error``, logged
once per change) and the rest flows.
Each cycle decodes its buffer vectorised (``codec.Decoder``) and emits one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel
from snap7.async_client import AsyncClient
from snap7.error import S7ConnectionError, S7Error, S7TimeoutError
from snap7.type import Area, Parameter

from plantlink.connectors.base import BatchSink, ConnectionLost, DeviceState, Point
from plantlink.connectors.loop import Lost
from plantlink.connectors.polling import PollingConnector
from plantlink.connectors.processing import PointProcessor
from plantlink.connectors.s7.codec import Decoder, encode
from plantlink.connectors.s7.config import S7Device, S7Point
from plantlink.connectors.s7.plan import Item, PollGroup, check_points, plan_reads, split_range
from plantlink.connectors.typed import source_of, typed_setup
from plantlink.errors import DeviceUnavailable, PointError
from plantlink.samples import Quality, concat, now_us, text_batch

log = logging.getLogger("plantlink.connectors.s7")

AREA = {"DB": Area.DB, "M": Area.MK, "I": Area.PE, "Q": Area.PA}
_LOST = (S7ConnectionError, S7TimeoutError, OSError, TimeoutError, asyncio.IncompleteReadError, EOFError)


def _where(it: Item) -> str:
    area = f"DB{it.db}" if it.area == "DB" else it.area
    return f"{area} bytes {it.start}..{it.start + it.size - 1}"


class Poller:
    """One poll group: its buffer, decoder and tag processing."""

    def __init__(self, group: PollGroup, points: Sequence[Point], pdu: int):
        self.points, self.pdu, self.period = points, pdu, group.period
        self._layout(group)

    def _layout(self, group: PollGroup) -> None:
        points = self.points
        self.group = group
        self.bases: list[int] = []
        size = 0
        for r in group.ranges:
            self.bases.append(size)
            size += r.size
        self.buf = np.zeros(size, dtype=np.uint8)
        rows: list[tuple[int, int]] = []  # (point index, range index)
        offsets: list[int] = []
        for k, r in enumerate(group.ranges):
            for i in r.members:
                loc = _source(points[i]).location
                rows.append((i, k))
                offsets.append(self.bases[k] + loc.start - r.start)
        locs = [_source(points[i]).location for i, _ in rows]
        self.decoder = Decoder(locs, offsets)
        numeric = [points[rows[j][0]] for j in self.decoder.num_rows]
        self.processor = PointProcessor(numeric)
        self.num_idx = np.arange(len(numeric), dtype=np.intp)
        self.num_range = np.array([rows[j][1] for j in self.decoder.num_rows], dtype=np.intp)
        self.text_ids = [points[rows[j][0]].tag_id for j in self.decoder.text_rows]
        self.text_range = np.array([rows[j][1] for j in self.decoder.text_rows], dtype=np.intp)
        self.failing: dict[tuple[int, int], str] = {}  # (range, offset) -> its current refusal
        self.singles: set[int] = set()  # requests with a refused item: read item by item from then on

    async def read(self, client: AsyncClient, timeout: float) -> tuple[np.ndarray, np.ndarray, list[str], int]:
        """Read every request: (range ok, range timestamps, new refusals, refused items). Raises ConnectionLost."""
        n = len(self.group.ranges)
        ok = np.ones(n, dtype=bool)
        ts = np.zeros(n, dtype=np.int64)
        errors: list[str] = []
        refused = 0
        split: set[int] = set()  # refused ranges of several members
        for r, items in enumerate(self.group.requests):
            datas = await _read_items(client, items, timeout, r in self.singles)
            if any(isinstance(d, str) for d in datas):
                self.singles.add(r)
            t = now_us()
            for it, data in zip(items, datas, strict=True):
                ts[it.range] = t
                key = (it.range, it.offset)
                if isinstance(data, str):
                    if len(self.group.ranges[it.range].members) > 1:
                        split.add(it.range)
                        continue
                    data = f"{self._named(it)}: {data}"
                    ok[it.range] = False
                    refused += 1
                    if self.failing.get(key) != data:
                        self.failing[key] = data
                        errors.append(data)
                    continue
                self.failing.pop(key, None)
                at = self.bases[it.range] + it.offset
                self.buf[at:at + it.size] = np.frombuffer(data, dtype=np.uint8)
        if split:  # read again with each member of a refused range on its own: only the refused stay bad
            group = self.group
            locs = [_source(p).location for p in self.points]
            for k in sorted(split, reverse=True):
                group = split_range(group, k, locs, self.pdu)
            self._layout(group)
            return await self.read(client, timeout)
        return ok, ts, errors, refused

    def _named(self, it: Item) -> str:
        """The tags (path and address) whose bytes ``it`` reads."""
        members = self.group.ranges[it.range].members
        srcs = [(self.points[i].path, _source(self.points[i])) for i in members]
        return ", ".join(f"tag {path} ({src.address})" for path, src in srcs
                         if src.location.start < it.start + it.size and src.location.end > it.start)

    def batches(self, ok: np.ndarray, ts: np.ndarray) -> list[Any]:
        out = []
        if len(self.num_idx):
            raw = self.decoder.decode(self.buf)
            q = np.where(ok[self.num_range], np.uint8(Quality.GOOD), np.uint8(Quality.BAD))
            out.append(self.processor.process(self.num_idx, raw, q, ts[self.num_range]))
        if self.text_ids:
            good = ok[self.text_range]
            vals = [s if g else None for s, g in zip(self.decoder.strings(self.buf), good, strict=True)]
            q = np.where(good, np.uint8(Quality.GOOD), np.uint8(Quality.BAD))
            out.append(text_batch(self.text_ids, ts[self.text_range].tolist(), vals, q.tolist()))
        return [concat(out)] if out else []

    def bad_batches(self, ts: int) -> list[Any]:
        n = len(self.group.ranges)
        return self.batches(np.zeros(n, dtype=bool), np.full(n, ts, dtype=np.int64))


async def _read_items(client: AsyncClient, items: Sequence[Item], timeout: float,
                      singles: bool = False) -> list[bytes | str]:
    """Each item's bytes, or why the CPU refused it. One multi-item request (unless ``singles``); item by item
    when it fails."""
    try:
        if len(items) > 1 and not singles:
            req = client.protocol.build_multi_read_request(
                [(int(AREA[it.area]), it.db, it.start, it.size) for it in items])
            resp = await asyncio.wait_for(client._send_receive(req), timeout)
            datas = client.protocol.extract_multi_read_data(resp, len(items))
            if all(len(d) == it.size for d, it in zip(datas, items, strict=True)):
                return [bytes(d) for d in datas]
    except _LOST as exc:
        raise ConnectionLost(f"read failed: {exc or type(exc).__name__}") from exc
    except S7Error:
        pass  # an item was refused: find which, one by one
    out: list[bytes | str] = []
    for it in items:
        try:
            data = await asyncio.wait_for(client.read_area(AREA[it.area], it.db, it.start, it.size), timeout)
        except _LOST as exc:
            raise ConnectionLost(f"read of {_where(it)} failed: {exc or type(exc).__name__}") from exc
        except S7Error as exc:
            out.append(f"{_where(it)}: refused by the CPU: {exc}")
            continue
        out.append(bytes(data) if len(data) == it.size else
                   f"{_where(it)}: the reply holds {len(data)} bytes, not {it.size}")
    return out



def _source(point: Point) -> S7Point:
    return source_of("s7", point, S7Point)


class S7Connector(PollingConnector):
    protocol = "s7"
    logger = log

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        super().__init__(device_id, config, points, sink)
        self.device, self.sources = typed_setup("s7", device_id, config, S7Device, self.points, S7Point,
            check_points)
        self.pdu = self.device.pdu_size
        self.pollers = self._pollers(self.pdu)
        self._client: AsyncClient | None = None

    def _pollers(self, pdu: int) -> list[Poller]:
        return [Poller(g, self.points, pdu) for g in plan_reads(self.device, self.sources, pdu)]

    # ------------------------------------------------------------------------------ lifecycle

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 1.0)

    async def _connect(self) -> str | None:
        dev = self.device
        self._lost = Lost()
        client = AsyncClient()
        client.set_param(Parameter.PDURequest, dev.pdu_size)
        self._client = client
        try:
            await asyncio.wait_for(client.connect(dev.host, dev.rack, dev.slot, dev.port), dev.timeout)
        except (*_LOST, S7Error):
            return f"cannot connect to {dev.host}:{dev.port} (rack {dev.rack}, slot {dev.slot})"
        if client.pdu_length != self.pdu:
            self.pdu = client.pdu_length
            self.pollers = self._pollers(self.pdu)
        return None

    # ---------------------------------------------------------------------------------- polling

    def _cycle_of(self, poller: Poller, lost: Lost) -> Callable[[], Awaitable[None]]:
        client = self._client
        assert client is not None

        async def cycle() -> None:
            ok, ts, errors, refused = await poller.read(client, self.device.timeout)
            if lost.is_set():
                return  # the connection was dropped meanwhile: the BAD batch is (being) sent instead
            self._answered()
            self.health.exception_replies += refused
            self._problems(errors)
            for batch in poller.batches(ok, ts):
                self.emit(batch)
        return cycle

    # ------------------------------------------------------------------------------------ write

    async def write(self, point: Point, value: Any) -> None:
        """Write ``value`` (engineering units) to ``point``, then read it back. A BOOL is merged into its byte
        (read, set the bit, write: not atomic against another writer of the same byte)."""
        src = _source(point)
        loc = src.location
        if not point.tag.writable:
            raise PointError(f"{point.path}: the tag is not writable (set writable: true in the plant model)")
        if loc.area == "I":
            raise PointError(f"{point.path}: inputs (I) cannot be written")
        client = self._client
        if client is None or self.health.state != DeviceState.CONNECTED:
            raise DeviceUnavailable(f"{point.path}: device {self.device_id} is not connected")
        area, t = AREA[loc.area], self.device.timeout
        try:
            if loc.type == "BOOL":
                old = (await asyncio.wait_for(client.read_area(area, loc.db, loc.start, 1), t))[0]
                mask = 1 << (loc.bit or 0)
                data = bytes([(old | mask) if bool(value) else (old & ~mask & 0xFF)])
            elif loc.type in ("STRING", "CHAR"):
                data = encode(loc, value, point.path)
            else:
                data = encode(loc, _untag(point, float(value)), point.path)
            await asyncio.wait_for(client.write_area(area, loc.db, loc.start, bytearray(data)), t)
            back = await asyncio.wait_for(client.read_area(area, loc.db, loc.start, len(data)), t)
        except _LOST as exc:
            raise DeviceUnavailable(f"{point.path}: write to device {self.device_id} failed: {exc}") from exc
        except S7Error as exc:
            raise PointError(f"{point.path}: write to {src.address} refused: {exc}") from exc
        if bytes(back) != data:
            raise PointError(f"{point.path}: read back {bytes(back).hex()} after writing {data.hex()} to "
                             f"{src.address}: not confirmed")


def _untag(point: Point, value: float) -> float:
    """Invert the tag's linear scaling: engineering value -> the PLC's value."""
    s = point.tag.scaling
    if s is None:
        return value
    gain = (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    if gain == 0:
        raise PointError(f"{point.path}: the tag's scaling is flat (eng_low == eng_high); cannot invert it")
    return (value - (s.eng_low - s.raw_low * gain)) / gain
