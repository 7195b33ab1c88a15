"""The wire format of an edge's batch: one Arrow IPC stream (schema, one record batch, end) per MQTT message.

Tag identity is the tag path (``site/area/line/machine/tag``), dictionary-encoded (each path once per message):
the edge and the central number their tags independently, the path is what both models share. Columns:
``path`` (dictionary<int32, string>), ``ts`` (timestamp us UTC), ``value`` (float64), ``quality`` (uint8) and
``text`` (string). The schema metadata carries the edge's name and the batch's sequence number (``seq``: the
edge queue's, increasing by one per batch, never reused), by which the central removes duplicates, and ``low``:
the edge holds nothing at or below it any more (confirmed stored, or dropped when its queue was full), so the
central may count those numbers as done (a gap the edge dropped does not hold back its stored floor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from plantlink.samples import SAMPLE_SCHEMA

EDGE_KEY = b"plantlink.edge"
SEQ_KEY = b"plantlink.edge_seq"
#: The queue's identity (random, made with the queue): a queue made anew (its directory lost) numbers from 1
#: again, and must not be taken for the old one's duplicates.
EPOCH_KEY = b"plantlink.edge_epoch"
LOW_KEY = b"plantlink.edge_low"


class PathTable:
    """The edge's tag ids -> paths, for encoding."""

    def __init__(self, paths: Mapping[int, str]):
        size = max(paths, default=0) + 1
        self.paths = np.empty(size, dtype=object)
        for tag_id, path in paths.items():
            self.paths[tag_id] = path

    def encode(self, edge: str, seq: int, batch: pa.RecordBatch, epoch: str = "", low: int = 0) -> bytes:
        ids = batch.column(0).to_numpy()
        uniq, idx = np.unique(ids, return_inverse=True)
        paths = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), pa.array(list(self.paths[uniq]),
                                                                                         pa.string()))
        out = pa.RecordBatch.from_arrays([paths, *batch.columns[1:]], names=["path", *batch.schema.names[1:]])
        out = out.replace_schema_metadata({EDGE_KEY: edge.encode(), SEQ_KEY: str(seq).encode(),
                                           EPOCH_KEY: epoch.encode(), LOW_KEY: str(low).encode()})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, out.schema) as writer:
            writer.write_batch(out)
        return bytes(sink.getvalue().to_pybytes())


def stream_of(edge: str, epoch: str) -> str:
    """What the central's dedupe is keyed by: the edge and its queue's epoch."""
    return f"{edge}@{epoch}" if epoch else edge


def edge_seq_of(batch: pa.RecordBatch) -> tuple[str, int] | None:
    """The (stream, sequence number) a stored batch came with (the central logs them with the batch), or None."""
    meta = batch.schema.metadata
    if not meta or EDGE_KEY not in meta or SEQ_KEY not in meta:
        return None
    return stream_of(meta[EDGE_KEY].decode(), meta.get(EPOCH_KEY, b"").decode()), int(meta[SEQ_KEY])


@dataclass
class Decoded:
    edge: str
    seq: int
    stream: str  # the edge and its queue's epoch: what sequence numbers are unique within
    batch: pa.RecordBatch  # in SAMPLE_SCHEMA, with the central's tag ids
    unknown: Sequence[str]  # paths the central does not know (their samples are not in ``batch``)
    unknown_rows: int
    low: int = 0  # the edge holds nothing at or below it any more


def decode(payload: bytes, tag_ids: Mapping[str, int]) -> Decoded:
    """A message -> the batch in the central's tag ids. Raises ValueError on a payload that is not an edge batch."""
    try:
        batch = pa.ipc.open_stream(pa.py_buffer(payload)).read_next_batch()
    except (pa.ArrowException, StopIteration) as exc:
        raise ValueError(f"not an Arrow IPC batch: {exc}") from None
    meta = batch.schema.metadata or {}
    if EDGE_KEY not in meta or SEQ_KEY not in meta or batch.schema.names[:1] != ["path"]:
        raise ValueError("an Arrow batch without the edge's name, sequence number or path column")
    col = batch.column(0)
    if not isinstance(col, pa.DictionaryArray):
        raise ValueError("the path column is not dictionary-encoded")
    dictionary = col.dictionary.to_pylist()
    central = np.array([tag_ids.get(p, -1) for p in dictionary], dtype=np.int64)
    ids = central[col.indices.to_numpy(zero_copy_only=False)] if len(central) else np.zeros(0, np.int64)
    known = ids >= 0
    unknown = [p for p, c in zip(dictionary, central, strict=True) if c < 0]
    rest = [batch.column(n) for n in SAMPLE_SCHEMA.names[1:]] if set(SAMPLE_SCHEMA.names[1:]) <= set(
        batch.schema.names) else None
    if rest is None:
        raise ValueError(f"columns {batch.schema.names}: expected path, ts, value, quality, text")
    out = pa.RecordBatch.from_arrays([pa.array(ids, pa.int64()).cast(pa.uint32(), safe=False), *rest],
                                     schema=SAMPLE_SCHEMA)
    if not known.all():
        out = out.filter(pa.array(known))
    epoch = meta.get(EPOCH_KEY, b"")
    out = out.replace_schema_metadata({EDGE_KEY: meta[EDGE_KEY], SEQ_KEY: meta[SEQ_KEY], EPOCH_KEY: epoch})
    edge = meta[EDGE_KEY].decode()
    try:
        low = int(meta.get(LOW_KEY, b"0"))
    except ValueError:
        raise ValueError(f"the edge's low mark {meta[LOW_KEY]!r} is not a number") from None
    return Decoded(edge, int(meta[SEQ_KEY]), stream_of(edge, epoch.decode()), out, unknown, int((~known).sum()),
                   low)
