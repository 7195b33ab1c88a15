"""In-memory latest-value cache, updated vectorised on every write (a scan of the store takes tens of ms)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from plantlink.samples import TS_TYPE

NO_TS = np.iinfo(np.int64).min


def last_per_tag(tag: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Indices of the row with the greatest ``ts`` of each tag (the later row wins a tie)."""
    if len(tag) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((ts, tag))
    st = tag[order]
    last = np.ones(len(st), dtype=bool)
    last[:-1] = st[1:] != st[:-1]
    return order[last]


class LatestCache:
    """Last sample per tag id: numeric values in arrays, the rare text values in a dict."""

    def __init__(self) -> None:
        self.ts = np.full(0, NO_TS, dtype=np.int64)
        self._value = np.zeros(0, dtype=np.float64)
        self._quality = np.zeros(0, dtype=np.uint8)
        self._is_text = np.zeros(0, dtype=bool)
        self._text: dict[int, str | None] = {}

    def _grow(self, max_id: int) -> None:
        n = len(self.ts)
        if max_id < n:
            return
        size = max(max_id + 1, 2 * n, 64)
        self.ts = np.concatenate([self.ts, np.full(size - n, NO_TS, dtype=np.int64)])
        self._value = np.concatenate([self._value, np.full(size - n, np.nan)])
        self._quality = np.concatenate([self._quality, np.zeros(size - n, dtype=np.uint8)])
        self._is_text = np.concatenate([self._is_text, np.zeros(size - n, dtype=bool)])

    def update(self, tag: np.ndarray, ts: np.ndarray, value: pa.Array, quality: np.ndarray) -> None:
        """Fold in samples (any order); a tag keeps the sample with the greatest timestamp."""
        idx = last_per_tag(tag, ts)
        if len(idx) == 0:
            return
        tags = tag[idx].astype(np.int64)
        self._grow(int(tags.max()))
        newer = ts[idx] >= self.ts[tags]
        idx, tags = idx[newer], tags[newer]
        self.ts[tags] = ts[idx]
        self._quality[tags] = quality[idx]
        if pa.types.is_string(value.type):
            self._value[tags] = np.nan
            self._is_text[tags] = True
            texts = value.take(pa.array(idx)).to_pylist()  # text tags are rare and their batches small
            self._text.update(zip(tags.tolist(), texts, strict=True))
        else:
            self._value[tags] = value.take(pa.array(idx)).to_numpy(zero_copy_only=False)
            self._is_text[tags] = False

    def forget_before(self, cutoff_us: int) -> None:
        old = (self.ts < cutoff_us) & (self.ts != NO_TS)
        self.ts[old] = NO_TS
        for t in np.flatnonzero(old & self._is_text).tolist():
            self._text.pop(t, None)
        self._is_text[old] = False

    def is_text(self, tag_id: int) -> bool:
        return tag_id < len(self._is_text) and bool(self._is_text[tag_id])

    def table(self, ids: np.ndarray) -> pa.Table:
        """``tag_id``, ``ts``, ``value``, ``quality``, ``text`` for ``ids`` (nulls where nothing is known)."""
        self._grow(int(ids.max()) if len(ids) else 0)
        ts = self.ts[ids]
        value = self._value[ids]
        none = ts == NO_TS
        is_text = self._is_text[ids]
        texts = [self._text.get(t) for t in ids[is_text].tolist()]
        text_col = np.full(len(ids), None, dtype=object)
        text_col[is_text] = texts
        return pa.table(
            {
                "tag_id": pa.array(ids, type=pa.uint32()),
                "ts": pa.array(ts, type=pa.int64(), mask=none).cast(TS_TYPE),
                "value": pa.array(value, type=pa.float64(), mask=none | is_text | np.isnan(value)),
                "quality": pa.array(self._quality[ids], type=pa.uint8(), mask=none),
                "text": pa.array(text_col, type=pa.string()),
            }
        )
