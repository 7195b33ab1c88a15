"""From OPC UA publish responses to sample batches, one publish response at a time.

asyncua's stock ``Subscription`` turns every monitored-item change into its own event object and handler
task. ``BatchingSubscription`` instead hands the raw ``MonitoredItemNotification`` list of a whole publish
response to a callback, and ``ChangeDecoder`` turns that list into at most two batches (numeric, text)
with a handful of list comprehensions and numpy operations.

Client handles are ``point index + 1`` so that decoding needs no lookup table.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import repeat
from operator import attrgetter
from operator import is_ as _is
from typing import Any

import numpy as np
import pyarrow as pa
from asyncua import ua
from asyncua.client.ua_session import UaSession
from asyncua.common.subscription import Subscription

from plantlink.connectors.base import Point
from plantlink.connectors.processing import PointProcessor
from plantlink.samples import Quality, concat, now_us, text_batch

log = logging.getLogger("plantlink.connectors.opcua")

ChangesCallback = Callable[[list[ua.MonitoredItemNotification]], None]
StatusCallback = Callable[[ua.StatusCode], None]

_handle_of = attrgetter("ClientHandle")
_datavalue_of = attrgetter("Value")
_timestamp = datetime.timestamp
_NAN = math.nan


class BatchingSubscription(Subscription):
    """A subscription that passes each publish response's data changes on as one list.

    ``on_changes`` receives every ``MonitoredItemNotification`` of a publish response at once;
    ``on_status`` receives the status of a ``StatusChangeNotification`` (subscription timed out, server
    shutting down, ...). Both are called from asyncua's publish loop and must not block.
    """

    def __init__(
        self,
        session: UaSession,
        params: ua.CreateSubscriptionParameters,
        on_changes: ChangesCallback,
        on_status: StatusCallback,
    ) -> None:
        super().__init__(session, params, handler=None, queue_maxsize=1)
        self._on_changes = on_changes
        self._on_status = on_status

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        data = message.NotificationData
        if not data:
            return  # a keep-alive
        self.last_sequence_number = int(message.SequenceNumber)
        changes: list[ua.MonitoredItemNotification] = []
        for notification in data:
            if isinstance(notification, ua.DataChangeNotification):
                changes.extend(notification.MonitoredItems)
            elif isinstance(notification, ua.StatusChangeNotification):
                self._on_status(notification.Status)
        if changes:
            self._on_changes(changes)


def quality_of(codes: np.ndarray) -> np.ndarray:
    """OPC UA status codes (uint32) to plantlink qualities: severity Good->192, Uncertain->64, Bad->0."""
    severity = np.asarray(codes, dtype=np.uint32) >> np.uint32(30)
    return np.where(severity == 0, Quality.GOOD, np.where(severity == 1, Quality.UNCERTAIN, Quality.BAD)).astype(
        np.uint8
    )


def _stamp(dv: ua.DataValue) -> float:
    """Seconds since the epoch of the source timestamp, else the server timestamp, else NaN."""
    ts = dv.SourceTimestamp or dv.ServerTimestamp
    return _timestamp(ts) if ts is not None else _NAN


def _raw(dv: ua.DataValue) -> Any:
    variant = dv.Value
    return variant.Value if variant is not None else None


def _code(dv: ua.DataValue) -> int:
    status = dv.StatusCode
    return status.value if status is not None else 0


class ChangeDecoder:
    """Turns monitored-item notifications of one device into one batch (numeric and text samples alike)."""

    def __init__(self, points: Sequence[Point], processor: PointProcessor, device: str):
        self.points = points
        self.processor = processor
        self.device = device
        self.n = len(points)
        self.is_text = np.array([p.tag.type == "string" for p in points], dtype=bool)
        self.text_idx = np.flatnonzero(self.is_text)
        self.numeric_idx = np.flatnonzero(~self.is_text)
        self.has_text = bool(self.text_idx.size)
        self._warned: set[int] = set()

    def decode(self, items: Sequence[ua.MonitoredItemNotification]) -> list[pa.RecordBatch]:
        n = len(items)
        idx = np.fromiter(map(_handle_of, items), dtype=np.int64, count=n) - 1
        dvs = list(map(_datavalue_of, items))
        raws = [_raw(dv) for dv in dvs]
        codes = np.fromiter(map(_code, dvs), dtype=np.uint32, count=n)
        secs = np.fromiter(map(_stamp, dvs), dtype=np.float64, count=n)
        ts = np.rint(secs * 1e6)
        missing = np.isnan(ts)
        ts_us = ts.astype(np.int64) if not missing.any() else np.where(missing, now_us(), ts).astype(np.int64)
        known = (idx >= 0) & (idx < self.n)
        if not known.all():
            log.warning("opcua device %s: %d notifications with unknown client handles", self.device, n - known.sum())
            keep = np.flatnonzero(known)
            idx, codes, ts_us, raws = idx[keep], codes[keep], ts_us[keep], [raws[i] for i in keep]
        q = quality_of(codes)
        if not self.has_text:
            return [self._numeric(idx, raws, q, ts_us)]
        text = self.is_text[idx]
        if not text.any():
            return [self._numeric(idx, raws, q, ts_us)]
        out = []
        num = np.flatnonzero(~text)
        if num.size:
            out.append(self._numeric(idx[num], [raws[i] for i in num], q[num], ts_us[num]))
        txt = np.flatnonzero(text)
        out.append(self._text(idx[txt], [raws[i] for i in txt], q[txt], ts_us[txt]))
        return [concat(out)]

    def _numeric(self, idx: np.ndarray, raws: list[Any], q: np.ndarray, ts_us: np.ndarray) -> pa.RecordBatch:
        try:
            values = np.asarray(raws, dtype=np.float64)
            if values.shape != idx.shape:
                raise ValueError("not scalar")
        except (TypeError, ValueError):
            values, q = self._coerce(idx, raws, q)
        missing = np.fromiter(map(_is, raws, repeat(None)), dtype=bool, count=len(raws))  # a null value
        return self.processor.process(idx, values, q, ts_us, missing)

    def _coerce(self, idx: np.ndarray, raws: list[Any], q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slow path: some values are not numbers (arrays, text on a numeric tag); those samples go BAD."""
        values = np.full(len(raws), np.nan)
        q = q.copy()
        for i, raw in enumerate(raws):
            try:
                values[i] = float(raw) if raw is not None else np.nan
            except (TypeError, ValueError):
                q[i] = Quality.BAD
                self._warn_once(int(idx[i]), f"value {raw!r:.60} is not a number")
        return values, q

    def _text(self, idx: np.ndarray, raws: list[Any], q: np.ndarray, ts_us: np.ndarray) -> pa.RecordBatch:
        values = [
            None if qi == Quality.BAD or raw is None else raw if isinstance(raw, str) else str(raw)
            for raw, qi in zip(raws, q.tolist(), strict=True)
        ]
        return text_batch(self.processor.tag_ids[idx].tolist(), ts_us.tolist(), values, q.tolist())

    def _warn_once(self, i: int, message: str) -> None:
        if i in self._warned:
            return
        self._warned.add(i)
        p = self.points[i]
        log.warning("opcua device %s: tag %s (node %s): %s", self.device, p.path, _node(p), message)

    def bad(self, idx: np.ndarray | Sequence[int], ts_us: int | None = None) -> list[pa.RecordBatch]:
        """Batches marking points ``idx`` BAD (no value) at ``ts_us`` (default: now)."""
        idx = np.asarray(idx, dtype=np.intp)
        ts = now_us() if ts_us is None else ts_us
        text = self.is_text[idx]
        out = []
        num = idx[~text]
        if num.size:
            out.append(self.processor.process(num, np.full(num.size, np.nan), Quality.BAD, ts))
        txt = idx[text]
        if txt.size:
            out.append(text_batch(self.processor.tag_ids[txt], ts, [None] * txt.size, Quality.BAD))
        return [concat(out)] if out else []


def _node(point: Point) -> str:
    return str(getattr(point.source, "node", "?"))
