"""What the ClickHouse historian holds between ``write`` and ``flush``: the accepted samples, each with its
arrival ``version``, and the latest sample of each tag among them (``latest`` answers from here first)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from plantlink.samples import TS_TYPE

RAW_SCHEMA = pa.schema([pa.field("tag_id", pa.uint32()), pa.field("ts", TS_TYPE), pa.field("value", pa.float64()),
                        pa.field("quality", pa.uint8()), pa.field("version", pa.uint64())])
TEXT_SCHEMA = RAW_SCHEMA.set(2, pa.field("text", pa.string()))


@dataclass
class Sorted:
    """Samples to insert, sorted by (tag_id, ts), one per (tag, time) (the last written)."""

    table: pa.Table
    tag: np.ndarray
    ts: np.ndarray
    duplicates: int


@dataclass
class Pending:
    raw: list[pa.Table] = field(default_factory=list)
    texts: list[pa.Table] = field(default_factory=list)
    #: tag id -> (version, ts, value, quality, text) of its latest unflushed sample
    latest: dict[int, tuple[int, int, float | None, int, str | None]] = field(default_factory=dict)
    rows: int = 0

    def add(self, batch: pa.RecordBatch, text: np.ndarray | None, first_version: int) -> None:
        n = batch.num_rows
        versions = pa.array(np.arange(first_version, first_version + n, dtype=np.uint64))
        table = pa.Table.from_batches([batch]).append_column("version", versions)
        numeric = table if text is None else table.filter(pa.array(~text))
        if numeric.num_rows:
            self.raw.append(numeric.select(["tag_id", "ts", "value", "quality", "version"]).cast(RAW_SCHEMA))
        if text is not None and text.any():
            texts = table.filter(pa.array(text)).select(["tag_id", "ts", "text", "quality", "version"])
            self.texts.append(texts.rename_columns(TEXT_SCHEMA.names).cast(TEXT_SCHEMA))
        self._note_latest(batch, text, first_version)
        self.rows += n

    def _note_latest(self, batch: pa.RecordBatch, text: np.ndarray | None, first_version: int) -> None:
        tag = batch.column("tag_id").to_numpy()
        rev = tag[::-1]
        _, first_in_rev = np.unique(rev, return_index=True)
        last = len(tag) - 1 - first_in_rev  # the last row of each tag in the batch
        ts = batch.column("ts").view(pa.int64()).to_numpy()
        values = batch.column("value").to_pylist()
        texts = batch.column("text").to_pylist()
        quality = batch.column("quality").to_numpy()
        for i in last.tolist():
            is_text = text is not None and bool(text[i])
            self.latest[int(tag[i])] = (first_version + i, int(ts[i]), None if is_text else values[i],
                                        int(quality[i]), texts[i] if is_text else None)

    def take(self) -> tuple[list[pa.Table], list[pa.Table], int]:
        raw, texts = self.raw, self.texts
        top = max((int(t.column("version")[-1].as_py()) for t in raw + texts if t.num_rows), default=0)
        self.raw, self.texts, self.rows = [], [], 0
        return raw, texts, top

    def put_back(self, raw: list[pa.Table], texts: list[pa.Table]) -> None:
        self.raw[:0], self.texts[:0] = raw, texts
        self.rows += sum(t.num_rows for t in raw + texts)

    def forget_latest(self, upto_version: int) -> None:
        """Drop the latest samples that are now in the store (written at or before ``upto_version``)."""
        self.latest = {k: v for k, v in self.latest.items() if v[0] > upto_version}


def sort(tables: list[pa.Table], schema: pa.Schema) -> Sorted | None:
    """The tables as one, sorted by (tag_id, ts), keeping the highest version of each (tag, time)."""
    if not tables:
        return None
    table = pa.concat_tables(tables).combine_chunks()
    tag = table.column("tag_id").to_numpy()
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    version = table.column("version").to_numpy()
    order = np.lexsort((version, ts, tag))
    table, tag, ts = table.take(pa.array(order)), tag[order], ts[order]
    again = (tag[1:] == tag[:-1]) & (ts[1:] == ts[:-1])
    duplicates = int(again.sum())
    if duplicates:
        keep = np.append(~again, True)
        table, tag, ts = table.filter(pa.array(keep)), tag[keep], ts[keep]
    return Sorted(table=table.cast(schema), tag=tag, ts=ts, duplicates=duplicates)
