"""The one thing that flows: a columnar batch of samples.

A batch is a ``pyarrow.RecordBatch`` with the columns ``tag_id`` (uint32), ``ts`` (timestamp, microseconds,
UTC), ``value`` and ``quality`` (uint8, OPC-style codes). Numeric tags carry ``value`` as float64
(``NUMERIC_SCHEMA``); string tags carry it as a string (``TEXT_SCHEMA``). Connectors build batches from
numpy arrays; nothing on a hot path makes a Python object per sample.

A sample without a value (a bad status, a lost connection, a device that sent a null) has a null ``value``.
A number that is not finite (NaN, +Inf, -Inf) is kept as the device sent it, with a bad quality (see
``plantlink.connectors.guard``); ``value_reasons`` names why a value cannot be shown as a number.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import IntEnum

import numpy as np
import pyarrow as pa


class Quality(IntEnum):
    """Sample quality, with the numeric codes of OPC DA / classic SCADA practice."""

    BAD = 0
    UNCERTAIN = 64
    GOOD = 192

    @classmethod
    def name_of(cls, code: int) -> str:
        if code >= cls.GOOD:
            return "good"
        if code >= cls.UNCERTAIN:
            return "uncertain"
        return "bad"


TS_TYPE = pa.timestamp("us", tz="UTC")

NUMERIC_SCHEMA = pa.schema(
    [
        pa.field("tag_id", pa.uint32(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("value", pa.float64()),
        pa.field("quality", pa.uint8(), nullable=False),
    ]
)

TEXT_SCHEMA = pa.schema(
    [
        pa.field("tag_id", pa.uint32(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("value", pa.string()),
        pa.field("quality", pa.uint8(), nullable=False),
    ]
)


def now_us() -> int:
    """The current time as integer microseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_us(ts_us: int | None) -> str:
    """An instant in microseconds as ISO 8601 in UTC with its offset, for people (logs, messages):
    ``2026-11-27T05:46:37.978123+00:00``. None gives ``"unknown"``."""
    if ts_us is None:
        return "unknown"
    return (_EPOCH + timedelta(microseconds=int(ts_us))).isoformat(timespec="microseconds")


def numeric_batch(
    tag_ids: np.ndarray | Sequence[int],
    ts_us: np.ndarray | Sequence[int] | int,
    values: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[int] | int,
    missing: np.ndarray | None = None,
) -> pa.RecordBatch:
    """Build a numeric batch from arrays; scalars for ``ts_us`` or ``quality`` are broadcast. Rows where
    ``missing`` is true have no value (null)."""
    ids = np.asarray(tag_ids, dtype=np.uint32)
    n = len(ids)
    ts = np.broadcast_to(np.asarray(ts_us, dtype=np.int64), (n,))
    q = np.broadcast_to(np.asarray(quality, dtype=np.uint8), (n,))
    vals = np.asarray(values, dtype=np.float64)
    mask = missing if missing is not None and missing.any() else None
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids, type=pa.uint32()),
            pa.array(ts, type=pa.int64()).cast(TS_TYPE),
            pa.array(vals, type=pa.float64(), mask=mask),
            pa.array(q, type=pa.uint8()),
        ],
        schema=NUMERIC_SCHEMA,
    )


def text_batch(
    tag_ids: np.ndarray | Sequence[int],
    ts_us: np.ndarray | Sequence[int] | int,
    values: Sequence[str | None],
    quality: np.ndarray | Sequence[int] | int,
) -> pa.RecordBatch:
    """Build a string-valued batch (text tags are rare; their batches are small)."""
    ids = np.asarray(tag_ids, dtype=np.uint32)
    n = len(ids)
    ts = np.broadcast_to(np.asarray(ts_us, dtype=np.int64), (n,))
    q = np.broadcast_to(np.asarray(quality, dtype=np.uint8), (n,))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids, type=pa.uint32()),
            pa.array(ts, type=pa.int64()).cast(TS_TYPE),
            pa.array(list(values), type=pa.string()),
            pa.array(q, type=pa.uint8()),
        ],
        schema=TEXT_SCHEMA,
    )


def is_text(batch: pa.RecordBatch) -> bool:
    return bool(pa.types.is_string(batch.schema.field("value").type))


#: Why a numeric value is shown as null: the device sent NaN, an infinity, or no value at all.
REASONS = ("nan", "+inf", "-inf", "null")


def value_reasons(values: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Per row of a float64 column: None for a finite number, else ``"nan"``, ``"+inf"``, ``"-inf"`` or
    ``"null"`` (no value), as an object array computed column-wise; None when every value is a number."""
    v = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if np.isfinite(v).all():
        return None
    out = np.full(len(v), None, dtype=object)
    out[np.isnan(v)] = "nan"
    out[v == np.inf] = "+inf"
    out[v == -np.inf] = "-inf"
    if values.null_count:
        out[values.is_null().to_numpy(zero_copy_only=False)] = "null"
    return out
