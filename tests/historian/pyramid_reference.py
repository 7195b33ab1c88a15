"""Aggregates of raw samples computed with numpy, independently of the store (the answers every rollup level
and every compaction state must give)."""

from __future__ import annotations

import numpy as np
import pytest

from plantlink.historian.duckdb import DuckDBHistorian

Samples = tuple[np.ndarray, np.ndarray, np.ndarray]  # ts (us), value, quality


def numpy_aggregate(samples: Samples, start: int, end: int, interval: int) -> dict[int, dict[str, float]]:
    """bucket start -> min/max/mean/twa/first/last/count of the good samples (quality >= 64, finite) in
    ``[start, end)``; twa steps each value to the next sample, the value before a bucket carried in."""
    ts, value, quality = samples
    good = (quality >= 64) & np.isfinite(value)
    order = np.argsort(ts[good], kind="stable")
    ts, value = ts[good][order], value[good][order]
    inside = ts[(ts >= start) & (ts < end)]
    out: dict[int, dict[str, float]] = {}
    for b in np.unique(inside - inside % interval).tolist():
        bs, be = max(b, start), min(b + interval, end)
        i0, i1 = np.searchsorted(ts, bs), np.searchsorted(ts, be)
        t, v = ts[i0:i1], value[i0:i1]
        nxt = np.append(t[1:], be)
        integral = float(np.sum(v * (nxt - t)))
        t0 = int(t[0])
        if i0 > 0:
            integral += float(value[i0 - 1]) * (int(t[0]) - bs)
            t0 = bs
        out[b] = {"min": v.min(), "max": v.max(), "mean": v.mean(), "twa": integral / (be - t0),
                  "first": v[0], "last": v[-1], "count": len(v)}
    return out


def answers(h: DuckDBHistorian, tags: list[int], start: int, end: int, interval: int
            ) -> dict[tuple[int, int], dict[str, float]]:
    rows = h.aggregate(tags, start, end, interval).to_pylist()
    return {(r["tag_id"], int(r["bucket"].timestamp() * 1_000_000)): r for r in rows}


def assert_same(got: dict[tuple[int, int], dict[str, float]], samples: dict[int, Samples], start: int, end: int,
                interval: int) -> None:
    expect = {(tag, b): row for tag, s in samples.items()
              for b, row in numpy_aggregate(s, start, end, interval).items()}
    assert sorted(got) == sorted(expect)
    for key, row in expect.items():
        for name, value in row.items():
            assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)
