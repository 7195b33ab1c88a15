"""The checks every batch passes on its way out of a connector (``Connector.emit``), vectorised over the batch.

* A timestamp more than the device's ``clock_skew`` ahead of this server's clock is not believed: the
  sample keeps its value but is stamped with its arrival time and its quality is lowered to uncertain
  (a sample stamped 2099 would otherwise stay "the latest" and "fresh" for decades). Counted in the device's
  health as ``future_timestamps``, the last original stamp kept as ``last_future_timestamp``.
* A numeric value that is not finite (NaN, +Inf, -Inf), or a sample without a value, is bad whatever the
  device said about it. Counted as ``bad_values`` (samples already bad are not counted again).

Both are logged with the device, a tag and the original timestamp or the value, at most once a minute per
device and kind, so that a device stuck in either state does not flood the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from plantlink.samples import TS_TYPE, Quality, now_us, text_rows, value_reasons

if TYPE_CHECKING:
    from plantlink.connectors.base import DeviceHealth

log = logging.getLogger("plantlink.connectors")

#: Seconds between two log lines of one kind for one device.
LOG_EVERY = 60.0


class SampleGuard:
    """Checks the batches of one device: ``check(batch)`` returns the batch, corrected where needed."""

    def __init__(self, device: str, health: DeviceHealth, clock_skew: float, paths: Mapping[int, str]):
        self.device = device
        self.health = health
        self.skew_us = int(clock_skew * 1e6)
        self.clock_skew = clock_skew
        self.paths = paths
        self._logged: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def check(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        now = now_us()
        ts = batch.column("ts").view(pa.int64()).to_numpy()
        future = ts > now + self.skew_us
        q = batch.column("quality").to_numpy()
        flagged = _no_number(batch) & (q >= Quality.UNCERTAIN)
        any_future, any_flagged = bool(future.any()), bool(flagged.any())
        if not (any_future or any_flagged):
            return batch
        cols = batch.columns
        q = q.copy()
        if any_future:
            q[future] = np.minimum(q[future], np.uint8(Quality.UNCERTAIN))
            cols[batch.schema.get_field_index("ts")] = pa.array(np.where(future, now, ts), pa.int64()).cast(TS_TYPE)
            self._future(batch, ts, future)
        if any_flagged:
            q[flagged] = Quality.BAD
            self._bad(batch, flagged)
        cols[batch.schema.get_field_index("quality")] = pa.array(q, type=pa.uint8())
        return pa.RecordBatch.from_arrays(cols, schema=batch.schema)

    def _future(self, batch: pa.RecordBatch, ts: np.ndarray, future: np.ndarray) -> None:
        rows = np.flatnonzero(future)
        n = int(rows.size)
        self.health.future_timestamps += n
        last = int(ts[rows[-1]])
        self.health.last_future_timestamp = last / 1e6
        latest = int(ts[rows].max())
        self._log("future", n, "device %s: %d sample(s) stamped up to %s (tag %s stamped %s), more than %g s ahead "
                  "of this server's clock: stored at their arrival time with quality uncertain",
                  self.device, n, _iso(latest), self._path(batch, int(rows[-1])), _iso(last), self.clock_skew)

    def _bad(self, batch: pa.RecordBatch, flagged: np.ndarray) -> None:
        rows = np.flatnonzero(flagged)
        n = int(rows.size)
        self.health.bad_values += n
        first = int(rows[0])
        value = batch.column("value").slice(first, 1)
        reasons = None if pa.types.is_string(value.type) else value_reasons(value)
        why = "null" if reasons is None else reasons[0]
        self._log("bad", n, "device %s: %d sample(s) without a finite value (tag %s: %s): stored with quality bad",
                  self.device, n, self._path(batch, first), why)

    def _path(self, batch: pa.RecordBatch, row: int) -> str:
        tag_id = int(batch.column("tag_id")[row].as_py())
        return self.paths.get(tag_id, f"#{tag_id}")

    def _log(self, kind: str, n: int, msg: str, *args: object) -> None:
        """Log ``msg`` unless this kind was logged less than LOG_EVERY seconds ago (then count it)."""
        t = time.monotonic()
        last = self._logged.get(kind)
        if last is not None and t - last < LOG_EVERY:
            self._unlogged[kind] = self._unlogged.get(kind, 0) + n
            return
        self._logged[kind] = t
        skipped = self._unlogged.pop(kind, 0)
        log.warning(msg + (f" ({skipped} more since the last report)" if skipped else ""), *args)


def _no_number(batch: pa.RecordBatch) -> np.ndarray:
    """Rows without a usable value: no text and a number that is null, NaN or infinite (a batch in a legacy
    text shape, whose ``value`` is a string: a null ``value``)."""
    values = batch.column("value")
    if pa.types.is_string(values.type):
        if not values.null_count:
            return np.zeros(len(values), dtype=bool)
        return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    v = values.to_numpy(zero_copy_only=False)  # nulls come out as NaN
    out: np.ndarray = ~np.isfinite(v)
    text = text_rows(batch) if "text" in batch.schema.names else None
    return out if text is None else out & ~text


def _iso(ts_us: int) -> str:
    try:
        return datetime.fromtimestamp(ts_us / 1e6, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return f"{ts_us} us"
