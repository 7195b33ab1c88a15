"""What a write takes in: the batch checked and conformed, its rows split between the numeric and the text
store (text samples, and samples without a value of tags typed as text), by the registered tags' kinds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from plantlink.errors import HistorianError
from plantlink.historian.base import TEXT_TYPES
from plantlink.historian.duckdb.buffer import STORE_SCHEMA, TEXT_STORE_SCHEMA, WriteBuffer, as_store
from plantlink.samples import conform, text_rows


def known_mask(types: dict[int, str], size: int = 0) -> np.ndarray:
    mask = np.zeros(max(max(types, default=0) + 1, size), dtype=bool)
    mask[list(types)] = True
    return mask


@dataclass
class TagKinds:
    """Masks by tag id: registered (``known``), typed as text (``text``)."""

    known: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool))
    text: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool))
    has_text: bool = False

    @classmethod
    def of(cls, types: dict[int, str]) -> TagKinds:
        known = known_mask(types)
        text = known_mask({t: k for t, k in types.items() if k in TEXT_TYPES}, len(known))
        return cls(known, text, bool(text.any()))

    def text_rows(self, batch: pa.RecordBatch, tag: np.ndarray) -> np.ndarray | None:
        """Rows for the text store: text samples, and samples without any value of tags typed as text."""
        text = text_rows(batch)
        if not self.has_text:
            return text
        typed = self.text[tag]
        if typed.any():
            typed &= batch.column("value").is_null().to_numpy(zero_copy_only=False)
            text = typed if text is None else text | typed
        return text


def add_split(batch: pa.RecordBatch, text: np.ndarray | None, buf: WriteBuffer, text_buf: WriteBuffer) -> None:
    """The batch's rows into the numeric buffer, and those ``text`` marks into the text buffer."""
    if text is None:
        buf.add(as_store(batch, STORE_SCHEMA))
        return
    if not text.all():
        buf.add(as_store(batch.filter(pa.array(~text)), STORE_SCHEMA))
    if text.any():
        text_buf.add(as_store(batch.filter(pa.array(text)), TEXT_STORE_SCHEMA, value="text"))


def check_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch in the samples schema (legacy shapes conformed); HistorianError naming the problem else."""
    try:
        return conform(batch)
    except ValueError as exc:
        raise HistorianError(f"batch refused: {exc}") from None
