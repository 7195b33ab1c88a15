"""Tag-level processing shared by every connector, vectorised over a device's points.

Given raw values for some of a device's points (by index), ``PointProcessor.process`` applies the tag's
linear scaling and type, drops values inside the tag's deadband (report by exception, bad-quality
transitions always pass), and returns a ready batch. A bad-quality sample, or one the device sent without a
value, has no value (null). A raw value that is not finite stays what the device sent (scaling, clamping, the
int and bool types would turn it into a plausible number); ``Connector.emit`` marks it bad.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from plantlink.connectors.base import Point
from plantlink.samples import Quality, numeric_batch


class PointProcessor:
    def __init__(self, points: Sequence[Point]):
        n = len(points)
        self.tag_ids = np.array([p.tag_id for p in points], dtype=np.uint32)
        self.gain = np.ones(n)
        self.offset = np.zeros(n)
        self.lo = np.full(n, -np.inf)
        self.hi = np.full(n, np.inf)
        self.deadband = np.array([p.tag.deadband for p in points], dtype=np.float64)
        self.is_int = np.array([p.tag.type == "int" for p in points])
        self.is_bool = np.array([p.tag.type == "bool" for p in points])
        for i, p in enumerate(points):
            s = p.tag.scaling
            if s is None:
                continue
            g = (s.eng_high - s.eng_low) / (s.raw_high - s.raw_low)
            self.gain[i] = g
            self.offset[i] = s.eng_low - s.raw_low * g
            if s.clamp:
                self.lo[i] = min(s.eng_low, s.eng_high)
                self.hi[i] = max(s.eng_low, s.eng_high)
        self.has_deadband = bool((self.deadband > 0).any())
        self.last = np.full(n, np.nan)
        self.last_q = np.full(n, -1, dtype=np.int16)

    def scale(self, idx: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Apply scaling, clamping and the tag's type to raw values of points ``idx``; a value that is not
        finite is left as it is."""
        raw = raw.astype(np.float64)
        v: np.ndarray = raw * self.gain[idx] + self.offset[idx]
        v = np.clip(v, self.lo[idx], self.hi[idx])
        ints = self.is_int[idx]
        if ints.any():
            v[ints] = np.round(v[ints])
        bools = self.is_bool[idx]
        if bools.any():
            v[bools] = (v[bools] != 0).astype(np.float64)
        odd = ~np.isfinite(raw)
        if odd.any():
            v[odd] = raw[odd]
        return v

    def process(
        self,
        idx: np.ndarray,
        raw: np.ndarray,
        quality: np.ndarray | int,
        ts_us: np.ndarray | int,
        missing: np.ndarray | None = None,
    ) -> pa.RecordBatch:
        """Scale, apply deadbands and build the batch for points ``idx``. Rows of bad quality, and rows where
        ``missing`` is true (the device sent no value), have no value."""
        idx = np.asarray(idx, dtype=np.intp)
        q = np.broadcast_to(np.asarray(quality, dtype=np.uint8), idx.shape)
        ts = np.broadcast_to(np.asarray(ts_us, dtype=np.int64), idx.shape)
        none = q == Quality.BAD
        if missing is not None:
            none = none | missing
        v = np.where(none, np.nan, self.scale(idx, np.asarray(raw)))
        keep = self._keep(idx, v, q)
        if not keep.all():
            idx, v, q, ts, none = idx[keep], v[keep], q[keep], ts[keep], none[keep]
        self.last[idx] = v
        self.last_q[idx] = q
        return numeric_batch(self.tag_ids[idx], ts, v, q, missing=none)

    def _keep(self, idx: np.ndarray, v: np.ndarray, q: np.ndarray) -> np.ndarray:
        if not self.has_deadband:
            return np.ones(idx.shape, dtype=bool)
        db = self.deadband[idx]
        last = self.last[idx]
        changed_q = self.last_q[idx] != q
        with np.errstate(invalid="ignore"):
            moved = ~(np.abs(v - last) <= db)  # NaN (first sample, bad value) counts as moved
        keep: np.ndarray = (db <= 0) | changed_q | moved
        if len(idx) > 1 and len(np.unique(idx)) != len(idx):
            keep[:] = True  # repeated points in one call: deadband state is per call, keep all
        return keep
