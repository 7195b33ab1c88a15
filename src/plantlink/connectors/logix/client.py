"""Logix connector (pylogix, in a worker thread): multi-service reads of tags by name at per-point rates.

One supervisor task owns the connection: it connects (session, then a Forward Open of ``connection_size``
bytes), starts one poll loop per poll period (``connectors.loop``), and when the connection is lost (closed,
a request unanswered within ``timeout``) it stops the loops, marks every point BAD once, and reconnects with
exponential back-off (``reconnect_min`` doubling up to ``reconnect_max``). Health goes RECONNECTING at the
first failure and DOWN after ``polling.DOWN_AFTER`` failures in a row; CONNECTED once the controller answers a read.

pylogix is a blocking client: every request runs in a worker thread, one at a time per connection (a lock).
A tag the controller refuses (it does not exist, an index out of range) or whose type is not the configured
one is not a lost connection: its point is BAD, the reason (naming the tag) in ``last_error``, counted in
``exception_replies``, logged once per change; the other tags keep flowing. A reply pylogix cannot decode
makes the group read tag by tag for that cycle, so only the tag that caused it stays BAD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel
from pylogix import PLC
from pylogix.utils import parse_tag_name

from plantlink.connectors.base import BatchSink, ConnectionLost, DeviceState, Point
from plantlink.connectors.logix.codec import encode, mismatch, plc_type, to_float
from plantlink.connectors.logix.config import LogixDevice, LogixPoint
from plantlink.connectors.logix.plan import PollGroup, check_points, plan_reads
from plantlink.connectors.loop import Lost
from plantlink.connectors.polling import PollingConnector
from plantlink.connectors.processing import PointProcessor
from plantlink.connectors.typed import source_of, typed_setup
from plantlink.errors import DeviceUnavailable, PointError
from plantlink.samples import Quality, concat, now_us, text_batch

log = logging.getLogger("plantlink.connectors.logix")

#: One read's outcome: (value, the controller's type name) or why it failed.
Reading = tuple[Any, str] | str


class Session:
    """One pylogix connection, used from worker threads one request at a time."""

    def __init__(self, device: LogixDevice):
        plc = PLC(device.host, slot=device.slot, timeout=device.timeout)
        plc.Port = device.port
        plc.ConnectionSize = device.connection_size
        self.plc, self.lock = plc, threading.Lock()

    @property
    def up(self) -> bool:
        return bool(self.plc.conn.SocketConnected)

    def connect(self) -> tuple[bool, str]:
        with self.lock:
            ok, why = self.plc.conn.connect()
            return bool(ok), str(why)

    def close(self) -> None:
        with self.lock, contextlib.suppress(Exception):
            self.plc.Close()

    def read(self, names: Sequence[str]) -> list[Reading]:
        """Each tag's (value, type) or the reason it failed. Raises ConnectionLost."""
        with self.lock:
            try:
                replies = self.plc.Read(list(names)) if len(names) > 1 else [self.plc.Read(names[0])]
                out = [self._reading(n, r) for n, r in zip(names, replies, strict=True)]
            except ConnectionLost:
                raise
            except Exception:  # a reply pylogix cannot decode: find which, one by one
                out = [self._one(n) for n in names]
            if not self.up:
                raise ConnectionLost("the controller closed the connection or did not answer")
            return out

    def _one(self, name: str) -> Reading:
        try:
            return self._reading(name, self.plc.Read(name))
        except Exception as exc:
            if not self.up:
                raise ConnectionLost(f"read of tag {name} failed: {exc!r}") from exc
            return f"tag {name}: the controller's reply could not be decoded ({type(exc).__name__}: {exc})"

    def _reading(self, name: str, reply: Any) -> Reading:
        if reply.Status != "Success":
            if not self.up:
                raise ConnectionLost(f"read of tag {name} failed: {reply.Status}")
            return f"tag {name}: refused by the controller: {reply.Status}"
        known = self.plc.KnownTags.get(parse_tag_name(name)[1])
        return reply.Value, plc_type(known[0] if known else None, reply.Value)

    def write(self, name: str, value: Any) -> str:
        with self.lock:
            return str(self.plc.Write(name, value).Status)


class Poller:
    """One poll group: its tag names, types and tag processing."""

    def __init__(self, group: PollGroup, points: Sequence[Point]):
        self.period = group.period
        pts = [points[i] for i in group.members]
        self.sources = [_source(p) for p in pts]
        self.names = [s.tag for s in self.sources]
        self.text = [k for k, s in enumerate(self.sources) if s.type == "STRING"]
        self.num = [k for k, s in enumerate(self.sources) if s.type != "STRING"]
        self.processor = PointProcessor([pts[k] for k in self.num])
        self.num_idx = np.arange(len(self.num), dtype=np.intp)
        self.text_ids = [pts[k].tag_id for k in self.text]
        self.failing: dict[int, str] = {}  # member -> its current problem
        #: The controller's type of each tag, once read (for writes).
        self.types: dict[str, str] = {}

    def judge(self, readings: Sequence[Reading]) -> tuple[list[Any], np.ndarray, list[str]]:
        """(values, good mask, new problems) of one cycle's readings."""
        values: list[Any] = [None] * len(readings)
        ok = np.zeros(len(readings), dtype=bool)
        errors: list[str] = []
        for k, r in enumerate(readings):
            problem = r if isinstance(r, str) else None
            if not isinstance(r, str):
                value, got = r
                self.types[self.names[k]] = got
                problem = mismatch(self.names[k], self.sources[k].type, got, value)
                values[k] = value
            if problem is None:
                ok[k] = True
                self.failing.pop(k, None)
            elif self.failing.get(k) != problem:
                self.failing[k] = problem
                errors.append(problem)
        return values, ok, errors

    def batches(self, values: Sequence[Any], ok: np.ndarray, ts: int) -> list[Any]:
        out = []
        if self.num:
            good = ok[self.num]
            raw = np.array([to_float(values[k]) if g else np.nan for k, g in zip(self.num, good, strict=True)],
                           dtype=np.float64)
            q = np.where(good, np.uint8(Quality.GOOD), np.uint8(Quality.BAD))
            out.append(self.processor.process(self.num_idx, raw, q, ts))
        if self.text:
            good = ok[self.text]
            vals = [str(values[k]) if g else None for k, g in zip(self.text, good, strict=True)]
            q = np.where(good, np.uint8(Quality.GOOD), np.uint8(Quality.BAD))
            out.append(text_batch(self.text_ids, ts, vals, q.tolist()))
        return [concat(out)] if out else []

    def bad_batches(self, ts: int) -> list[Any]:
        n = len(self.names)
        return self.batches([None] * n, np.zeros(n, dtype=bool), ts)



def _source(point: Point) -> LogixPoint:
    return source_of("logix", point, LogixPoint)


class LogixConnector(PollingConnector):
    protocol = "logix"
    logger = log

    def __init__(self, device_id: str, config: BaseModel, points: Sequence[Point], sink: BatchSink):
        super().__init__(device_id, config, points, sink)
        self.device, sources = typed_setup("logix", device_id, config, LogixDevice, self.points, LogixPoint,
            check_points)
        self.pollers = [Poller(g, self.points) for g in plan_reads(self.device, sources)]
        self._session: Session | None = None

    # ------------------------------------------------------------------------------ lifecycle

    async def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await asyncio.to_thread(session.close)

    async def _connect(self) -> str | None:
        self._lost = Lost()
        session = Session(self.device)
        self._session = session
        ok, why = await asyncio.to_thread(session.connect)
        dev = self.device
        return None if ok else f"cannot connect to {dev.host}:{dev.port} (slot {dev.slot}): {why}"

    def _cycle_of(self, poller: Poller, lost: Lost) -> Callable[[], Awaitable[None]]:
        session = self._session
        assert session is not None

        async def cycle() -> None:
            readings = await asyncio.to_thread(session.read, poller.names)
            if lost.is_set():
                return  # the connection was dropped meanwhile: the BAD batch is (being) sent instead
            ts = now_us()
            self._answered()
            values, ok, errors = poller.judge(readings)
            self.health.exception_replies += int((~ok).sum())
            self._problems(errors)
            for batch in poller.batches(values, ok, ts):
                self.emit(batch)
        return cycle

    # ------------------------------------------------------------------------------------ write

    async def write(self, point: Point, value: Any) -> None:
        """Write ``value`` (engineering units) to ``point``'s tag, then read it back."""
        src = _source(point)
        if not point.tag.writable:
            raise PointError(f"{point.path}: the tag is not writable (set writable: true in the plant model)")
        session = self._session
        if session is None or self.health.state != DeviceState.CONNECTED:
            raise DeviceUnavailable(f"{point.path}: device {self.device_id} is not connected")
        type_ = src.type or next((p.types[src.tag] for p in self.pollers if src.tag in p.types), None)
        if type_ is None:
            raise PointError(f"{point.path}: the type of tag {src.tag} is not known yet (set the point's type, "
                             "or wait for its first read)")
        raw = encode(type_, value if type_ in ("STRING", "BOOL") else _untag(point, float(value)), point.path)
        status = await asyncio.to_thread(session.write, src.tag, raw)
        if not session.up:
            raise DeviceUnavailable(f"{point.path}: write to device {self.device_id} failed: {status}")
        if status != "Success":
            raise PointError(f"{point.path}: write to tag {src.tag} refused: {status}")
        (back,) = await asyncio.to_thread(session.read, [src.tag])
        if isinstance(back, str) or (back[0] != raw and not (isinstance(raw, float) and _same_real(back[0], raw))):
            raise PointError(f"{point.path}: read back {back!r} after writing {raw!r} to tag {src.tag}: "
                             "not confirmed")


def _same_real(got: Any, want: float) -> bool:
    return isinstance(got, float) and abs(got - want) <= 1e-6 * max(1.0, abs(want))


def _untag(point: Point, value: float) -> float:
    """Invert the tag's linear scaling: engineering value -> the controller's value."""
    s = point.tag.scaling
    if s is None:
        return value
    gain = (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
    if gain == 0:
        raise PointError(f"{point.path}: the tag's scaling is flat (eng_low == eng_high); cannot invert it")
    return (value - (s.eng_low - s.raw_low * gain)) / gain
