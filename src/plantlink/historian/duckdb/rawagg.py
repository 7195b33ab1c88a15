"""Aggregates at any interval straight from raw samples (``tag_id``, ``ts``, ``value``, good samples only).

The same figures as ``aggregate.combine`` on raw rows (``n = 1``, ``integ = 0``), summed in the same order,
with few passes over the samples: one bucket index per sample (``(ts - origin) // interval``), bucket starts
where it or the tag changes, ``reduceat`` for min, max, sum and the time-weighted integral. A sample's gap
to the next one of its bucket is ``v * dt``; at a bucket's first sample the previous sample of the tag (or
the one carried in from before the range) always lies in an earlier bucket, so its gap runs from the
bucket's start.

Rows must come by tag, then time: compacted days are read so. Rows in another order (a day not compacted
yet holds one sorted run per flush) are put in order first: a stable sort by tag when the flushes came in
time order, else one stable argsort of a combined (tag, time) key, a merge of those runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from plantlink.historian.base import Aggregate


def combine_raw(src: pa.Table, start: int, end: int, interval: int, aggregates: Sequence[Aggregate],
                carry: pa.Table | None = None) -> pa.Table:
    """One row per (tag, bucket), by tag then bucket, from raw rows (``tag_id``, ``ts``, ``value``)."""
    tag = np.asarray(src.column("tag_id").to_numpy(), dtype=np.uint32)
    ts = np.asarray(src.column("ts").to_numpy(), dtype=np.int64)
    v = np.asarray(src.column("value").to_numpy(), dtype=np.float64)
    order = sort_order(tag, ts, start, end)
    if order is not None:
        tag, ts, v = tag[order], ts[order], v[order]
    return pa.table(_fold(tag, ts, v, start, end, interval, aggregates, _carry_lookup(carry)))


def in_order(tag: np.ndarray, ts: np.ndarray) -> bool:
    """Whether rows are by tag (ascending), then time (non-decreasing): one comparison pass over ``ts``, the
    rest only where time goes back."""
    if len(ts) < 2:
        return True
    back = np.flatnonzero(ts[1:] < ts[:-1])
    if len(back) and bool((tag[back + 1] <= tag[back]).any()):
        return False
    change = np.flatnonzero(tag[1:] != tag[:-1])
    return bool((tag[change + 1] > tag[change]).all())


def sort_order(tag: np.ndarray, ts: np.ndarray, start: int, end: int) -> np.ndarray | None:
    """None when rows are in (tag, time) order, else the stable order that puts them so: by tag alone when
    that suffices (flushes in time order; a radix sort for 16-bit ids), else by a (tag, time) key."""
    if in_order(tag, ts):
        return None
    if int(tag.max()) < 2**16:
        by_tag: np.ndarray = np.argsort(tag.astype(np.uint16), kind="stable")
        if in_order(tag[by_tag], ts[by_tag]):
            return by_tag
    span = end - start
    if (int(tag.max()) + 1) * span >= 2**62:
        order: np.ndarray = np.lexsort((ts, tag))
        return order
    key = tag.astype(np.int64) * span + (ts - start)
    return np.argsort(key, kind="stable")


def _carry_lookup(carry: pa.Table | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The carried-in samples (one per tag) as (tag ids sorted, their values)."""
    if carry is None or carry.num_rows == 0:
        return None
    ctag = np.asarray(carry.column("tag_id").to_numpy(), dtype=np.int64)
    cval = np.asarray(carry.column("last_v").to_numpy(), dtype=np.float64)
    by_tag = np.argsort(ctag, kind="stable")
    return ctag[by_tag], cval[by_tag]


def _fold(tag: np.ndarray, ts: np.ndarray, v: np.ndarray, start: int, end: int, interval: int,
          aggregates: Sequence[Aggregate], prev: tuple[np.ndarray, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The aggregates of rows in (tag, time) order (see the module docstring)."""
    origin = start - start % interval
    k = ts - origin
    k //= interval
    new = np.empty(len(ts), dtype=bool)
    new[0] = True
    np.not_equal(k[1:], k[:-1], out=new[1:])
    tag_start = np.empty(len(ts), dtype=bool)
    tag_start[0] = True
    np.not_equal(tag[1:], tag[:-1], out=tag_start[1:])
    new |= tag_start
    st = np.flatnonzero(new)
    en = np.append(st[1:], len(ts)) - 1
    b = k[st] * interval + origin
    out: dict[str, np.ndarray] = {"tag_id": tag[st], "bucket": b}
    for a in aggregates:
        if a == "min":
            out[a] = np.minimum.reduceat(v, st)
        elif a == "max":
            out[a] = np.maximum.reduceat(v, st)
        elif a == "mean":
            out[a] = np.add.reduceat(v, st) / (en - st + 1)
        elif a == "twa":
            out[a] = _twa(tag, ts, v, st, en, tag_start[st], b, start, end, interval, prev)
        elif a == "first":
            out[a] = v[st]
        elif a == "last":
            out[a] = v[en]
        else:
            out[a] = en - st + 1
    return out


def _carried(tag: np.ndarray, st: np.ndarray, first_of_tag: np.ndarray, v: np.ndarray,
             prev: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket: whether a sample precedes its first one (same tag, or carried in), and that sample's value."""
    has_prev = ~first_of_tag
    prev_v = np.where(has_prev, v[np.maximum(st - 1, 0)], np.nan)
    if prev is not None:
        ctag, cval = prev
        firsts = np.flatnonzero(first_of_tag)
        want = tag[st[firsts]].astype(np.int64)
        pos = np.minimum(np.searchsorted(ctag, want), len(ctag) - 1)
        match = ctag[pos] == want
        has_prev[firsts[match]] = True
        prev_v[firsts[match]] = cval[pos[match]]
    return has_prev, prev_v


def _twa(tag: np.ndarray, ts: np.ndarray, v: np.ndarray, st: np.ndarray, en: np.ndarray, first_of_tag: np.ndarray,
         b: np.ndarray, start: int, end: int, interval: int, prev: tuple[np.ndarray, np.ndarray] | None
         ) -> np.ndarray:
    bs, be = np.maximum(b, start), np.minimum(b + interval, end)
    has_prev, prev_v = _carried(tag, st, first_of_tag, v, prev)
    gap = np.empty(len(v))
    gap[0] = 0.0
    np.subtract(ts[1:], ts[:-1], out=gap[1:], casting="unsafe")  # exact: differences below 2**53 us
    gap[1:] *= v[:-1]  # gap[i]: the previous sample's value times the time to this one
    gap[st] = np.where(has_prev, prev_v * (ts[st] - bs), 0.0)
    integral = np.add.reduceat(gap, st)
    integral += v[en] * (be - ts[en])
    out: np.ndarray = integral / (be - np.where(has_prev, bs, ts[st]))
    return out
