"""What a historian refuses or flags per sample before it stores a batch (any backend).

A batch may come from a connector (whose guard already flags what it cannot believe), the write-ahead log, a
backfill file, an edge forwarding its backlog or a plugin. Whatever slipped through is sorted out here, sample
by sample, so one bad sample never costs the batch its good ones:

* ``unknown_tag``: a tag id the historian has not registered: refused (it has no place to go);
* ``before_1970``: a timestamp before the epoch: refused;
* ``far_future``: a timestamp more than ``future_limit_us`` ahead of this server's clock: refused (a device
  clock that jumped; the connectors' guard replaces such stamps within their own skew before this);
* ``non_finite``: NaN or an infinity with a good or uncertain quality: stored, but flagged bad, so no
  rollup or aggregate takes it as a number.

Duplicates of one (tag, time) are the store's to resolve (the last one written wins); it counts them with the
refusals. Counts are kept from the historian's open; the first refusal of each kind is logged with an example,
and then one in every ``LOG_EVERY`` (a device that sends bad samples sends many).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from plantlink.samples import Quality

__all__ = ["FUTURE_LIMIT_US", "Refusals", "screen"]

FUTURE_LIMIT_US = 24 * 3600 * 1_000_000
LOG_EVERY = 10_000
log = logging.getLogger("plantlink.historian")


@dataclass
class Refusals:
    """Samples refused (or flagged) per reason since open, with the last example of each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, n: int, example: str) -> None:
        if n <= 0:
            return
        before = self.counts[reason]
        self.counts[reason] = before + n
        self.examples[reason] = example
        if before == 0 or before // LOG_EVERY != (before + n) // LOG_EVERY:
            log.warning("historian: %d sample(s) %s (%d so far), e.g. %s", n, _WORDS.get(reason, reason),
                        before + n, example)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


_WORDS = {"unknown_tag": "refused for an unknown tag id", "before_1970": "refused for a time before 1970",
          "far_future": "refused for a time too far ahead of this server's clock",
          "non_finite": "stored bad for a value that is not a finite number",
          "duplicate": "replaced by a later one of the same tag and time"}


def screen(batch: pa.RecordBatch, known: np.ndarray, now_us: int, refusals: Refusals,
           future_limit_us: int = FUTURE_LIMIT_US) -> pa.RecordBatch:
    """``batch`` without the samples it cannot store, its non-finite good values flagged bad; each one counted
    in ``refusals``. ``known`` is a boolean mask over tag ids (True: registered). The batch comes back as it was
    (the same object) when nothing is wrong with it, which is what every check costs in the usual case."""
    n = batch.num_rows
    if n == 0:
        return batch
    tag = batch.column("tag_id").to_numpy().astype(np.int64)
    ts = batch.column("ts").view(pa.int64()).to_numpy()
    keep = np.ones(n, dtype=bool)
    unknown = tag >= len(known)
    if len(known):
        unknown |= ~known[np.minimum(tag, len(known) - 1)]
    checks = (("unknown_tag", unknown), ("before_1970", ts < 0), ("far_future", ts > now_us + future_limit_us))
    for reason, bad in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            refusals.add(reason, int(bad.sum()), f"tag id {int(tag[i])} at {int(ts[i])} us")
            keep &= ~bad
    out = batch if keep.all() else batch.filter(pa.array(keep))
    return _flag_non_finite(out, refusals)


def _flag_non_finite(batch: pa.RecordBatch, refusals: Refusals) -> pa.RecordBatch:
    value = batch.column("value")
    if value.null_count == len(value):
        return batch
    v = value.to_numpy(zero_copy_only=False)
    q = batch.column("quality").to_numpy()
    wrong = ~np.isfinite(np.where(np.isnan(v) & value.is_null().to_numpy(zero_copy_only=False), 0.0, v))
    wrong &= q > Quality.BAD
    if not wrong.any():
        return batch
    i = int(np.flatnonzero(wrong)[0])
    refusals.add("non_finite", int(wrong.sum()), f"tag id {batch.column('tag_id')[i].as_py()} value {v[i]}")
    quality = np.where(wrong, np.uint8(Quality.BAD), q).astype(np.uint8)
    return batch.set_column(batch.schema.get_field_index("quality"), "quality", pa.array(quality, pa.uint8()))
