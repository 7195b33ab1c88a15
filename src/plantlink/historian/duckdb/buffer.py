"""The write buffer: batches accepted by ``write`` wait here and leave as one chunk sorted by (tag_id, ts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

STORE_SCHEMA = pa.schema(
    [
        pa.field("tag_id", pa.uint32(), nullable=False),
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("quality", pa.uint8(), nullable=False),
    ]
)
TEXT_STORE_SCHEMA = STORE_SCHEMA.set(2, pa.field("value", pa.string()))


@dataclass
class Chunk:
    """Samples sorted by (tag_id, ts): the Arrow table to insert and numpy views of its columns."""

    table: pa.Table
    tag: np.ndarray
    ts: np.ndarray
    value: np.ndarray  # float64, NaN where the value is null (empty for text chunks)
    quality: np.ndarray
    #: samples of a (tag, time) written again: dropped from the chunk (an earlier one in the buffer) or
    #: deleted from the store (one stored before); the last one written is what stays
    duplicates: int = 0

    def __len__(self) -> int:
        return len(self.tag)


def as_store(batch: pa.RecordBatch, schema: pa.Schema, value: str = "value") -> pa.RecordBatch:
    """The batch with ``ts`` as plain int64 microseconds (zero-copy), in the stored column order; the stored
    ``value`` is the batch's column ``value`` (``"text"`` for the text store)."""
    cols = [batch.column(name) for name in ("tag_id", "ts", value, "quality")]
    cols[1] = cols[1].view(pa.int64()) if pa.types.is_timestamp(cols[1].type) else cols[1]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


class WriteBuffer:
    """Accumulates store-shaped batches; ``take`` empties it into one sorted chunk."""

    def __init__(self, schema: pa.Schema):
        self._schema = schema
        self._batches: list[pa.RecordBatch] = []
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self._batches.append(batch)
        self.rows += batch.num_rows

    def put_back(self, batches: list[pa.RecordBatch]) -> None:
        """Return batches whose flush failed, ahead of anything written since."""
        self._batches[:0] = batches
        self.rows += sum(b.num_rows for b in batches)

    def take(self) -> list[pa.RecordBatch]:
        batches, self._batches, self.rows = self._batches, [], 0
        return batches

    def sort(self, batches: list[pa.RecordBatch]) -> Chunk:
        table = pa.Table.from_batches(batches, schema=self._schema).combine_chunks()
        tag = table.column("tag_id").to_numpy()
        ts = table.column("ts").to_numpy()
        order = np.lexsort((ts, tag))  # stable: samples of one (tag, time) stay in the order written
        if not np.all(order[1:] > order[:-1]):
            table = table.take(pa.array(order))
            tag, ts = tag[order], ts[order]
        again = (tag[1:] == tag[:-1]) & (ts[1:] == ts[:-1])  # True: the next row is the same (tag, time)
        duplicates = int(again.sum())
        if duplicates:
            keep = np.append(~again, True)  # the last one written of each (tag, time)
            table, tag, ts = table.filter(pa.array(keep)), tag[keep], ts[keep]
        q = table.column("quality").to_numpy()
        text = pa.types.is_string(self._schema.field("value").type)
        value = np.empty(0) if text else table.column("value").to_numpy()
        return Chunk(table=table, tag=tag, ts=ts, value=value, quality=q, duplicates=duplicates)
