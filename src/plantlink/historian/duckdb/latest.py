"""In-memory latest-value cache, updated vectorised on every write (a scan of the store takes tens of ms).

The latest sample of a tag is the one that ARRIVED last (the last row of the last write), not the one with
the greatest timestamp: a device whose clock jumps back, or a value re-sent after a reconnect with its old
source timestamp, is still its current value, and one sample stamped far ahead can never freeze it.
(Connectors replace timestamps too far ahead of the clock by the arrival time: ``connectors.guard``.)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from plantlink.samples import TS_TYPE

NO_TS = np.iinfo(np.int64).min


def last_per_tag(tag: np.ndarray) -> np.ndarray:
    """Index of the last row of each tag (rows in arrival order)."""
    if len(tag) == 0:
        return np.empty(0, dtype=np.int64)
    _, first_from_end = np.unique(tag[::-1], return_index=True)
    return (len(tag) - 1 - first_from_end).astype(np.int64)


class LatestCache:
    """Last sample per tag id: numeric values in arrays, the rare text values in a dict."""

    def __init__(self) -> None:
        self.ts = np.full(0, NO_TS, dtype=np.int64)
        self._value = np.zeros(0, dtype=np.float64)
        self._null = np.zeros(0, dtype=bool)  # no value at all (as opposed to NaN, which the device sent)
        self._quality = np.zeros(0, dtype=np.uint8)
        self._is_text = np.zeros(0, dtype=bool)
        self._text: dict[int, str | None] = {}
        self._changed = np.zeros(0, dtype=bool)  # updated since the last ``take_changed`` (to persist)

    def _grow(self, max_id: int) -> None:
        n = len(self.ts)
        if max_id < n:
            return
        size = max(max_id + 1, 2 * n, 64)
        self.ts = np.concatenate([self.ts, np.full(size - n, NO_TS, dtype=np.int64)])
        self._value = np.concatenate([self._value, np.full(size - n, np.nan)])
        self._null = np.concatenate([self._null, np.ones(size - n, dtype=bool)])
        self._quality = np.concatenate([self._quality, np.zeros(size - n, dtype=np.uint8)])
        self._is_text = np.concatenate([self._is_text, np.zeros(size - n, dtype=bool)])
        self._changed = np.concatenate([self._changed, np.zeros(size - n, dtype=bool)])

    def update(self, tag: np.ndarray, ts: np.ndarray, value: pa.Array, quality: np.ndarray,
               text: pa.Array | None = None) -> None:
        """Fold in samples in arrival order: a tag keeps its last row, whatever its timestamp. ``value`` is
        float64; a row whose ``text`` is set is a text sample (``samples.SAMPLE_SCHEMA``)."""
        idx = last_per_tag(tag)
        if len(idx) == 0:
            return
        tags = tag[idx].astype(np.int64)
        self._grow(int(tags.max()))
        self.ts[tags] = ts[idx]
        self._changed[tags] = True
        self._quality[tags] = quality[idx]
        take = pa.array(idx)
        picked = value.take(take)
        self._value[tags] = picked.to_numpy(zero_copy_only=False)
        self._null[tags] = picked.is_null().to_numpy(zero_copy_only=False) if picked.null_count else False
        self._is_text[tags] = False
        if text is not None and text.null_count < len(text):
            self._update_text(tags, text.take(take))

    def _update_text(self, tags: np.ndarray, words: pa.Array) -> None:
        """The text samples among the last rows (text tags are rare and their batches small)."""
        is_text = words.is_valid().to_numpy(zero_copy_only=False)
        if not is_text.any():
            return
        texts = tags[is_text]
        self._value[texts] = np.nan
        self._is_text[texts] = True
        self._text.update(zip(texts.tolist(), words.filter(pa.array(is_text)).to_pylist(), strict=True))

    def forget_before(self, cutoff_us: int) -> None:
        old = (self.ts < cutoff_us) & (self.ts != NO_TS)
        self.ts[old] = NO_TS
        for t in np.flatnonzero(old & self._is_text).tolist():
            self._text.pop(t, None)
        self._is_text[old] = False

    def take_changed(self) -> np.ndarray:
        """The tag ids updated since the last call (what a flush persists); the marks are cleared."""
        ids = np.flatnonzero(self._changed)
        self._changed[ids] = False
        return ids

    def mark_changed(self, ids: np.ndarray) -> None:
        """Mark ``ids`` again (a flush that persisted them failed)."""
        if len(ids):
            self._grow(int(ids.max()))
            self._changed[ids] = True

    def rows(self, ids: np.ndarray) -> pa.Table:
        """The stored shape of ``ids``' latest samples (``persisted.LATEST_DDL``): ``value`` null for text
        tags and samples without a value, ``text`` set for text tags."""
        ids = ids[self.ts[ids] != NO_TS] if len(ids) else ids
        is_text = self._is_text[ids]
        text_col = np.full(len(ids), None, dtype=object)
        text_col[is_text] = [self._text.get(t) for t in ids[is_text].tolist()]
        return pa.table({
            "tag_id": pa.array(ids, type=pa.uint32()),
            "ts": pa.array(self.ts[ids], type=pa.int64()),
            "value": pa.array(self._value[ids], type=pa.float64(), mask=is_text | self._null[ids]),
            "quality": pa.array(self._quality[ids], type=pa.uint8()),
            "text": pa.array(text_col, type=pa.string()),
        })

    def load(self, t: pa.Table) -> None:
        """Set the samples of a ``rows``-shaped table (an open reading the persisted values; no marks)."""
        if t.num_rows == 0:
            return
        tags = t.column("tag_id").to_numpy().astype(np.int64)
        self._grow(int(tags.max()))
        value = t.column("value").combine_chunks()
        text = t.column("text").combine_chunks()
        is_text = text.is_valid().to_numpy(zero_copy_only=False)
        self.ts[tags] = t.column("ts").to_numpy()
        self._quality[tags] = t.column("quality").to_numpy()
        self._value[tags] = value.to_numpy(zero_copy_only=False)  # nulls become NaN
        self._null[tags] = value.is_null().to_numpy(zero_copy_only=False) & ~is_text
        self._is_text[tags] = is_text
        if is_text.any():
            self._text.update(zip(tags[is_text].tolist(), text.filter(pa.array(is_text)).to_pylist(), strict=True))

    def is_text(self, tag_id: int) -> bool:
        return tag_id < len(self._is_text) and bool(self._is_text[tag_id])

    def table(self, ids: np.ndarray) -> pa.Table:
        """``tag_id``, ``ts``, ``value``, ``quality``, ``text`` for ``ids`` (nulls where nothing is known).

        ``value`` is null for text tags and samples without a value; NaN and the infinities stay as stored
        (with a bad quality) so that a reader can say why there is no number (``samples.value_reasons``)."""
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
                "value": pa.array(value, type=pa.float64(), mask=none | is_text | self._null[ids]),
                "quality": pa.array(self._quality[ids], type=pa.uint8(), mask=none),
                "text": pa.array(text_col, type=pa.string()),
            }
        )
