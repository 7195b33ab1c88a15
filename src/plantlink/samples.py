"""The one thing that flows: a columnar batch of samples.

A batch is a ``pyarrow.RecordBatch`` in ``SAMPLE_SCHEMA``: ``tag_id`` (uint32), ``ts`` (timestamp,
microseconds, UTC), ``value`` (float64), ``quality`` (uint8, OPC-style codes) and ``text`` (string). A numeric
sample has ``value`` and a null ``text``; a text sample has ``text`` and a null ``value``; one batch may mix
both. ``conform`` turns the legacy four-column shapes (``value`` float64 or string) into this schema.
Connectors build batches from numpy arrays; nothing on a hot path makes a Python object per sample.

A sample without a value (a bad status, a lost connection, a device that sent a null) has a null ``value``
and a null ``text``.
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
import pyarrow.compute as pc


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

#: The one schema of a sample batch. A numeric sample has ``value`` (float64) and a null ``text``; a text sample
#: has ``text`` and a null ``value``; one batch may hold both kinds. ``text`` is last, so code that selects
#: the first four columns by name keeps working.
SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("tag_id", pa.uint32(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("value", pa.float64()),
        pa.field("quality", pa.uint8(), nullable=False),
        pa.field("text", pa.string()),
    ]
)
_BASE = ("tag_id", "ts", "value", "quality")  # the columns of the two legacy shapes (value float64 or string)


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
            pa.nulls(n, pa.string()),
        ],
        schema=SAMPLE_SCHEMA,
    )


def text_batch(
    tag_ids: np.ndarray | Sequence[int],
    ts_us: np.ndarray | Sequence[int] | int,
    values: Sequence[str | None],
    quality: np.ndarray | Sequence[int] | int,
) -> pa.RecordBatch:
    """Build a batch of text samples (``value`` null, ``text`` set; text tags are rare, their batches small)."""
    ids = np.asarray(tag_ids, dtype=np.uint32)
    n = len(ids)
    ts = np.broadcast_to(np.asarray(ts_us, dtype=np.int64), (n,))
    q = np.broadcast_to(np.asarray(quality, dtype=np.uint8), (n,))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids, type=pa.uint32()),
            pa.array(ts, type=pa.int64()).cast(TS_TYPE),
            pa.nulls(n, pa.float64()),
            pa.array(q, type=pa.uint8()),
            pa.array(list(values), type=pa.string()),
        ],
        schema=SAMPLE_SCHEMA,
    )


def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch in ``SAMPLE_SCHEMA`` (the same object when it already is; schema metadata is kept).

    Also takes the two legacy four-column shapes (``tag_id``, ``ts``, ``value``, ``quality`` with ``value``
    float64 or string: what connectors sent and the write-ahead log stored before the ``text`` column) and a
    ``ts`` of timestamp[us] in another or no time zone. Raises ``ValueError`` naming the problem otherwise."""
    schema = batch.schema
    if schema.equals(SAMPLE_SCHEMA):
        return batch
    names = set(schema.names)
    missing = set(_BASE) - names
    if missing:
        raise ValueError(f"missing columns {sorted(missing)}")
    value = batch.column("value")
    legacy_text = "text" not in names and pa.types.is_string(value.type)
    n = batch.num_rows
    cols = [batch.column("tag_id"), batch.column("ts"), pa.nulls(n, pa.float64()) if legacy_text else value,
            batch.column("quality"), value if legacy_text else _text_of(batch)]
    for field, col in zip(SAMPLE_SCHEMA, cols, strict=True):
        if field.name == "ts" and pa.types.is_timestamp(col.type) and col.type.unit == "us":
            continue
        if col.type != field.type:
            raise ValueError(f"column {field.name} is {col.type}, expected {field.type}")
    cols[1] = cols[1].cast(TS_TYPE)
    return pa.RecordBatch.from_arrays(cols, schema=SAMPLE_SCHEMA.with_metadata(schema.metadata))


def _text_of(batch: pa.RecordBatch) -> pa.Array:
    return batch.column("text") if "text" in batch.schema.names else pa.nulls(batch.num_rows, pa.string())


def concat(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch of the rows of ``batches`` (``SAMPLE_SCHEMA``, in order): a poll's numeric and text samples."""
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


def text_rows(batch: pa.RecordBatch | pa.Table) -> np.ndarray | None:
    """Per row of a ``SAMPLE_SCHEMA`` batch: True for a text sample (``text`` set); None when there are none
    (the common case, answered without touching the rows)."""
    text = batch.column("text")
    if text.null_count == len(text):
        return None
    return np.asarray(pc.is_valid(text).to_numpy(zero_copy_only=False), dtype=bool)


def values_of(batch: pa.RecordBatch | pa.Table) -> list[float | str | None]:
    """Per row, as Python objects: the text of a text sample, else the number (None: no value). For the few
    rows a per-sample reader takes (a state engine's inputs, a connector suite's checks), not a hot path."""
    values: list[float | str | None] = batch.column("value").to_pylist()
    if text_rows(batch) is not None:
        for i, t in enumerate(batch.column("text").to_pylist()):
            if t is not None:
                values[i] = t
    return values


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
