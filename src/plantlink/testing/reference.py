"""A plain-Python reference of the aggregate contract (``Historian.aggregate``), written independently of any
backend: the historian suite compares a backend's answers with it."""

from __future__ import annotations

import math

Sample = tuple[int, float, int]  # ts_us, value, quality


def reference_aggregate(
    samples: list[Sample], start: int, end: int, interval: int
) -> dict[int, dict[str, float | int]]:
    """bucket start -> aggregates, for buckets holding at least one good sample in [start, end)."""
    good = sorted((ts, v) for ts, v, q in samples if q >= 64 and math.isfinite(v))
    out: dict[int, dict[str, float | int]] = {}
    buckets = sorted({ts - ts % interval for ts, _ in good if start <= ts < end})
    for b in buckets:
        bs, be = max(b, start), min(b + interval, end)
        inside = [(ts, v) for ts, v in good if bs <= ts < be]
        before = [(ts, v) for ts, v in good if ts < bs]
        values = [v for _, v in inside]
        integral, t0 = 0.0, inside[0][0]
        if before:
            t0 = bs
            integral += before[-1][1] * (inside[0][0] - bs)
        for (ts, v), nxt in zip(inside, [*inside[1:], (be, 0.0)], strict=True):
            integral += v * (nxt[0] - ts)
        out[b] = {
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "twa": integral / (be - t0),
            "first": values[0],
            "last": values[-1],
            "count": len(values),
        }
    return out
