"""Sub-minute aggregates straight from raw samples already in (tag, time) order (compacted days read in order).

The same figures as ``aggregate.combine`` on raw rows (``n = 1``, ``integ = 0``), summed in the same order,
with fewer passes over the samples: one bucket key per sample (``tag * buckets + bucket index``), bucket
starts where it changes, ``reduceat`` for min, max, sum and the time-weighted integral. A sample's gap to the
next one of its bucket is ``v * dt``; at a bucket's first sample the previous sample of the tag (or the one
carried in from before the range) always lies in an earlier bucket, so its gap runs from the bucket's start.
Rows not in (tag, time) order, or keys that would not fit in 62 bits, return None: the caller sorts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from plantlink.historian.base import Aggregate


def _carried(tag: np.ndarray, st: np.ndarray, v: np.ndarray, carry: pa.Table | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket: whether a sample precedes its first one (same tag, or carried in), and that sample's value."""
    has_prev = np.zeros(len(st), dtype=bool)
    inner = st > 0
    has_prev[inner] = tag[st[inner] - 1] == tag[st[inner]]
    prev_v = np.where(inner, v[np.maximum(st - 1, 0)], np.nan)
    if carry is not None and carry.num_rows:
        firsts = np.flatnonzero(~has_prev)
        ctag = np.asarray(carry.column("tag_id").to_numpy(), dtype=np.int64)
        cval = np.asarray(carry.column("last_v").to_numpy(), dtype=np.float64)
        by_tag = np.argsort(ctag, kind="stable")
        pos = np.minimum(np.searchsorted(ctag[by_tag], tag[st[firsts]]), len(ctag) - 1)
        match = ctag[by_tag][pos] == tag[st[firsts]]
        has_prev[firsts[match]] = True
        prev_v[firsts[match]] = cval[by_tag[pos[match]]]
    return has_prev, prev_v


def combine_raw(src: pa.Table, start: int, end: int, interval: int, aggregates: Sequence[Aggregate],
                carry: pa.Table | None = None) -> pa.Table | None:
    """One row per (tag, bucket) from raw rows (``tag_id``, ``ts``, ``value``), or None (see the module)."""
    tag = np.asarray(src.column("tag_id").to_numpy(), dtype=np.int64)
    ts = np.asarray(src.column("ts").to_numpy(), dtype=np.int64)
    v = np.asarray(src.column("value").to_numpy(), dtype=np.float64)
    k0 = start // interval
    buckets = (end - 1) // interval - k0 + 1
    if len(tag) == 0 or (int(tag.max()) + 1) * buckets >= 2**62:
        return None
    key = tag * buckets + (ts // interval - k0)
    dkey, dts = np.diff(key), np.diff(ts)
    if not (bool((dkey >= 0).all()) and bool((dts[dkey == 0] >= 0).all())):
        return None
    st = np.flatnonzero(np.concatenate(([True], dkey != 0)))
    en = np.append(st[1:], len(tag)) - 1
    n = en - st + 1
    b = (key[st] - tag[st] * buckets + k0) * interval
    out: dict[str, np.ndarray] = {"tag_id": tag[st], "bucket": b}
    for a in aggregates:
        if a == "min":
            out[a] = np.minimum.reduceat(v, st)
        elif a == "max":
            out[a] = np.maximum.reduceat(v, st)
        elif a == "mean":
            out[a] = np.add.reduceat(v, st) / n
        elif a == "twa":
            out[a] = _twa(tag, ts, v, dts, st, en, b, start, end, interval, carry)
        elif a == "first":
            out[a] = v[st]
        elif a == "last":
            out[a] = v[en]
        else:
            out[a] = n
    return pa.table(out)


def _twa(tag: np.ndarray, ts: np.ndarray, v: np.ndarray, dts: np.ndarray, st: np.ndarray, en: np.ndarray,
         b: np.ndarray, start: int, end: int, interval: int, carry: pa.Table | None) -> np.ndarray:
    bs, be = np.maximum(b, start), np.minimum(b + interval, end)
    has_prev, prev_v = _carried(tag, st, v, carry)
    gap = np.empty(len(v))
    gap[0] = 0.0
    np.multiply(v[:-1], dts, out=gap[1:])  # gap[i]: the previous sample's value times the time to this one
    gap[st] = np.where(has_prev, prev_v * (ts[st] - bs), 0.0)
    integral = np.add.reduceat(gap, st)
    integral += v[en] * (be - ts[en])
    out: np.ndarray = integral / (be - np.where(has_prev, bs, ts[st]))
    return out
