"""The last sample of each tag in a batch, vectorised: what a last-value publisher sends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class LastValues:
    """Column arrays, one row per tag (the tag's last row in the batch, in batch order)."""

    tag_id: npt.NDArray[np.uint32]
    ts_ms: npt.NDArray[np.int64]
    iso: npt.NDArray[np.str_]  # ISO 8601 UTC with milliseconds: 2026-11-27T05:46:37.978Z
    value: npt.NDArray[np.float64]  # NaN where null
    has_value: npt.NDArray[np.bool_]  # a finite number
    quality: npt.NDArray[np.uint8]
    text: list[str | None]

    def __len__(self) -> int:
        return len(self.tag_id)


def last_values(batch: pa.RecordBatch, selected: npt.NDArray[np.uint32]) -> LastValues:
    """The last row of every tag of ``batch`` whose id is in ``selected`` (a sorted array)."""
    ids = batch.column("tag_id").to_numpy()
    rev = ids[::-1]
    uniq, first = np.unique(rev, return_index=True)
    keep = np.isin(uniq, selected, assume_unique=True)
    rows = (len(ids) - 1 - first[keep]).astype(np.int64)
    idx = pa.array(rows, pa.int64())
    ts_us = pc.take(batch.column("ts"), idx).cast(pa.int64()).to_numpy()
    ts_ms = ts_us // 1000
    iso = np.char.add(np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms"), "Z")
    vcol = pc.take(batch.column("value"), idx)
    value = vcol.to_numpy(zero_copy_only=False).astype(np.float64)
    value = np.where(pc.is_null(vcol).to_numpy(zero_copy_only=False), np.nan, value)
    quality = pc.take(batch.column("quality"), idx).to_numpy().astype(np.uint8)
    text = pc.take(batch.column("text"), idx).to_pylist() if "text" in batch.schema.names else [None] * len(rows)
    return LastValues(uniq[keep].astype(np.uint32), ts_ms.astype(np.int64), iso, value, np.isfinite(value),
                      quality, text)
