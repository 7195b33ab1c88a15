"""Production counters: units made between samples of a PLC counter that rolls over and gets reset.

A counter is read as samples (timestamps and values, possibly floats after scaling). The increment of
a sample is what the counter advanced since the last good sample before it:

* delta >= 0: the delta;
* delta < 0 after a value in the top part of the range (``prev > counter_max * reset_threshold``) to a small
  value (``new <= counter_max * (1 - reset_threshold)``): a ROLLOVER, ``delta + counter_max + 1``;
* any other delta < 0: a RESET (cleared by an operator, PLC restart): the new value, counted since the reset.

NaN or infinite values (bad quality) are skipped: nothing is counted across the gap until the next good
sample, whose increment is measured from the last good one. Everything is vectorised with numpy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _check_counter(counter_max: int, reset_threshold: float) -> None:
    if counter_max <= 0:
        raise ValueError(f"counter_max must be > 0, got {counter_max}")
    if not 0.0 < reset_threshold < 1.0:
        raise ValueError(f"reset_threshold must be between 0 and 1 (exclusive), got {reset_threshold}")


def increments(values: npt.ArrayLike, counter_max: int, reset_threshold: float = 0.5) -> FloatArray:
    """Per-sample increments, same length as ``values``: element i is what the counter advanced from the last
    good sample before i to sample i; 0 for the first good sample and for bad (NaN) samples."""
    _check_counter(counter_max, reset_threshold)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"counter values must be one-dimensional, got shape {v.shape}")
    out = np.zeros(v.shape, dtype=np.float64)
    finite = np.isfinite(v)
    if finite.all():  # the common case: no gather/scatter
        if v.size > 1:
            out[1:] = _steps(v, counter_max, reset_threshold)
        return out
    good = np.flatnonzero(finite)
    if good.size > 1:
        out[good[1:]] = _steps(v[good], counter_max, reset_threshold)
    return out


def _steps(known: FloatArray, counter_max: int, reset_threshold: float) -> FloatArray:
    """Increments between consecutive good values (length ``known.size - 1``)."""
    prev, new = known[:-1], known[1:]
    delta = new - prev
    negative = np.flatnonzero(delta < 0)  # rare: fix up only those
    if negative.size:
        p, n = prev[negative], new[negative]
        rollover = (p > counter_max * reset_threshold) & (n <= counter_max * (1.0 - reset_threshold))
        delta[negative] = np.where(rollover, n - p + (counter_max + 1), n)
    return delta


def _samples(ts_us: npt.ArrayLike, values: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], FloatArray]:
    ts = np.asarray(ts_us, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != v.shape:
        raise ValueError(f"ts_us and values must be one-dimensional and of equal length, got {ts.shape} and {v.shape}")
    if ts.size > 1 and bool(np.any(ts[1:] < ts[:-1])):
        first = int(np.argmax(ts[1:] < ts[:-1])) + 1
        raise ValueError(f"counter timestamps must be sorted ascending (sample {first} is earlier than the one before)")
    return ts, v


def count_between(
    ts_us: npt.ArrayLike,
    values: npt.ArrayLike,
    start_us: int,
    end_us: int,
    counter_max: int,
    reset_threshold: float = 0.5,
) -> float:
    """Units produced in ``[start_us, end_us)``: the sum of the increments of the samples stamped in the range.
    The first sample in the range is measured from the last good sample before the range (if any)."""
    ts, v = _samples(ts_us, values)
    if end_us < start_us:
        raise ValueError(f"end_us ({end_us}) is before start_us ({start_us})")
    lo = int(np.searchsorted(ts, start_us, side="left"))
    hi = int(np.searchsorted(ts, end_us, side="left"))
    if hi <= lo:
        return 0.0
    good_before = np.flatnonzero(np.isfinite(v[:lo]))
    first = int(good_before[-1]) if good_before.size else lo
    return float(increments(v[first:hi], counter_max, reset_threshold).sum())


def count_windows(
    ts_us: npt.ArrayLike,
    values: npt.ArrayLike,
    edges_us: npt.ArrayLike,
    counter_max: int,
    reset_threshold: float = 0.5,
) -> FloatArray:
    """Units produced in each window ``[edges[i], edges[i+1])`` (for example hourly buckets), in one pass:
    the same figures as :func:`count_between` per window."""
    ts, v = _samples(ts_us, values)
    edges = np.asarray(edges_us, dtype=np.int64)
    if edges.ndim != 1 or (edges.size > 1 and bool(np.any(edges[1:] < edges[:-1]))):
        raise ValueError("edges_us must be a one-dimensional ascending array")
    if edges.size < 2:
        return np.zeros(0, dtype=np.float64)
    total = np.concatenate(([0.0], np.cumsum(increments(v, counter_max, reset_threshold))))
    at = np.searchsorted(ts, edges, side="left")
    return np.diff(total[at])
