"""Production counters: units made between samples of a PLC counter that rolls over and gets reset.

A counter is read as samples (timestamps and values, possibly floats after scaling). The step of a sample is
what the counter advanced since the good sample before it:

* delta >= 0: the delta;
* delta < 0 after a value in the top part of the range (``prev > counter_max * reset_threshold``) to a small
  value (``new <= counter_max * (1 - reset_threshold)``): a ROLLOVER, ``delta + counter_max + 1``;
* any other delta < 0: a RESET (cleared by an operator, PLC restart): the new value, counted since the reset.

Only a step between two samples of one **continuous stretch** is production. A sample that follows a gap is a
**baseline**, never a delta: what the counter advanced across the gap is reported apart (``gap``), because
nobody watched the machine meanwhile and no run time was counted for it. A gap is:

* a bad-quality sample (NaN or infinite value: the device was disconnected, the value unusable);
* a **cut**: an instant after which plantlink's next run begins (``cuts``: the clean stop of a run, or after a
  crash its last known time and the instant before the next start), which the pair of samples straddles;
* a time between two samples longer than ``max_gap_us`` (the tag's expected period, with margin), when given.

A decrease across a gap that is not a rollover (the counter was reset, or the device replaced, while nobody
watched) is neither production nor gap quantity: what was made is unknown; it is counted in ``gap_resets``.
Everything is vectorised with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: Instants (us, ascending) that samples on both sides of are not continuous: see ``gaps_before``.
Cuts = npt.ArrayLike


@dataclass(frozen=True)
class Split:
    """Per-sample increments of a counter (all the same length as its values)."""

    #: What the counter advanced since the sample before, within a continuous stretch: production.
    units: FloatArray
    #: What the counter advanced across the gap before this sample (a baseline): reported apart.
    gap: FloatArray
    #: The counter went back across the gap before this sample without a rollover: unknown quantity.
    gap_reset: BoolArray


@dataclass(frozen=True)
class Tally:
    """The counter's units in a range: production, units across gaps, decreases across gaps."""

    units: float
    gap_units: float
    gap_resets: int


def _check_counter(counter_max: float, reset_threshold: float) -> None:
    if counter_max <= 0:
        raise ValueError(f"counter_max must be > 0, got {counter_max}")
    if not 0.0 < reset_threshold < 1.0:
        raise ValueError(f"reset_threshold must be between 0 and 1 (exclusive), got {reset_threshold}")


def split(values: npt.ArrayLike, counter_max: float, reset_threshold: float = 0.5, *,
          after_gap: npt.ArrayLike | None = None) -> Split:
    """Per-sample increments of ``values``. ``after_gap[i]`` true: a gap lies between sample i-1 and sample i
    (see :func:`gaps_before`); a bad (NaN) sample between two good ones is a gap too."""
    _check_counter(counter_max, reset_threshold)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"counter values must be one-dimensional, got shape {v.shape}")
    units = np.zeros(v.shape, dtype=np.float64)
    gap = np.zeros(v.shape, dtype=np.float64)
    went_back_at = np.zeros(v.shape, dtype=bool)
    good = np.flatnonzero(np.isfinite(v))
    if good.size < 2:
        return Split(units, gap, went_back_at)
    step, went_back = _steps(v[good], counter_max, reset_threshold)
    broken = np.diff(good) > 1  # a bad sample between two good ones
    if after_gap is not None:
        flags = np.asarray(after_gap, dtype=bool)
        if flags.shape != v.shape:
            raise ValueError(f"after_gap must have the shape of the values {v.shape}, got {flags.shape}")
        broken |= flags[good[1:]]
    at = good[1:]
    units[at] = np.where(broken, 0.0, step)
    gap[at] = np.where(broken & ~went_back, step, 0.0)
    went_back_at[at] = broken & went_back
    return Split(units, gap, went_back_at)


def increments(values: npt.ArrayLike, counter_max: int, reset_threshold: float = 0.5, *,
               after_gap: npt.ArrayLike | None = None) -> FloatArray:
    """Per-sample production increments, same length as ``values``: element i is what the counter advanced
    from sample i-1 to sample i within a continuous stretch; 0 for a baseline (the first good sample, one after
    a gap) and for bad (NaN) samples. See :func:`split` for what went across gaps."""
    return split(values, counter_max, reset_threshold, after_gap=after_gap).units


def _steps(known: FloatArray, counter_max: float, reset_threshold: float) -> tuple[FloatArray, BoolArray]:
    """Increments between consecutive good values (length ``known.size - 1``) and where they are resets."""
    prev, new = known[:-1], known[1:]
    delta = new - prev
    reset = np.zeros(delta.shape, dtype=bool)
    negative = np.flatnonzero(delta < 0)  # rare: fix up only those
    if negative.size:
        p, n = prev[negative], new[negative]
        rollover = (p > counter_max * reset_threshold) & (n <= counter_max * (1.0 - reset_threshold))
        delta[negative] = np.where(rollover, n - p + (counter_max + 1), n)
        reset[negative] = ~rollover
    return delta, reset


def gaps_before(ts_us: npt.ArrayLike, *, cuts: Cuts | None = None, max_gap_us: int | None = None) -> BoolArray:
    """For each sample, whether a gap lies between it and the sample before: a cut ``c`` with
    ``ts[i-1] <= c < ts[i]``, or the two more than ``max_gap_us`` apart."""
    ts = np.asarray(ts_us, dtype=np.int64)
    out = np.zeros(ts.shape, dtype=bool)
    if ts.size < 2:
        return out
    a, b = ts[:-1], ts[1:]
    brk = np.zeros(a.shape, dtype=bool)
    if max_gap_us is not None:
        brk |= (b - a) > max_gap_us
    if cuts is not None:
        c = np.asarray(cuts, dtype=np.int64)
        if c.size:
            k = np.searchsorted(c, a, side="left")  # the first cut at or after a
            brk |= (k < c.size) & (c[np.minimum(k, c.size - 1)] < b)
    out[1:] = brk
    return out


def _samples(ts_us: npt.ArrayLike, values: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], FloatArray]:
    ts = np.asarray(ts_us, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != v.shape:
        raise ValueError(f"ts_us and values must be one-dimensional and of equal length, got {ts.shape} and {v.shape}")
    if ts.size > 1 and bool(np.any(ts[1:] < ts[:-1])):
        first = int(np.argmax(ts[1:] < ts[:-1])) + 1
        raise ValueError(f"counter timestamps must be sorted ascending (sample {first} is earlier than the one before)")
    return ts, v


def tally_between(
    ts_us: npt.ArrayLike,
    values: npt.ArrayLike,
    start_us: int,
    end_us: int,
    counter_max: int,
    reset_threshold: float = 0.5,
    *,
    cuts: Cuts | None = None,
    max_gap_us: int | None = None,
) -> Tally:
    """Units in ``[start_us, end_us)``: the increments of the samples stamped in the range, production apart
    from what went across gaps. The first sample in the range is measured from the last good sample before
    the range (if any), so consecutive ranges add up exactly."""
    ts, v = _samples(ts_us, values)
    if end_us < start_us:
        raise ValueError(f"end_us ({end_us}) is before start_us ({start_us})")
    lo = int(np.searchsorted(ts, start_us, side="left"))
    hi = int(np.searchsorted(ts, end_us, side="left"))
    if hi <= lo:
        return Tally(0.0, 0.0, 0)
    good_before = np.flatnonzero(np.isfinite(v[:lo]))
    first = int(good_before[-1]) if good_before.size else lo
    part = split(v[first:hi], counter_max, reset_threshold,
                 after_gap=gaps_before(ts[first:hi], cuts=cuts, max_gap_us=max_gap_us))
    k = lo - first
    return Tally(float(part.units[k:].sum()), float(part.gap[k:].sum()), int(part.gap_reset[k:].sum()))


def count_between(
    ts_us: npt.ArrayLike,
    values: npt.ArrayLike,
    start_us: int,
    end_us: int,
    counter_max: int,
    reset_threshold: float = 0.5,
    *,
    cuts: Cuts | None = None,
    max_gap_us: int | None = None,
) -> float:
    """Units produced in ``[start_us, end_us)`` (production only; see :func:`tally_between`)."""
    return tally_between(ts_us, values, start_us, end_us, counter_max, reset_threshold, cuts=cuts,
                         max_gap_us=max_gap_us).units


def count_windows(
    ts_us: npt.ArrayLike,
    values: npt.ArrayLike,
    edges_us: npt.ArrayLike,
    counter_max: int,
    reset_threshold: float = 0.5,
    *,
    cuts: Cuts | None = None,
    max_gap_us: int | None = None,
) -> FloatArray:
    """Units produced in each window ``[edges[i], edges[i+1])`` (for example hourly buckets), in one pass:
    the same figures as :func:`count_between` per window."""
    ts, v = _samples(ts_us, values)
    edges = np.asarray(edges_us, dtype=np.int64)
    if edges.ndim != 1 or (edges.size > 1 and bool(np.any(edges[1:] < edges[:-1]))):
        raise ValueError("edges_us must be a one-dimensional ascending array")
    if edges.size < 2:
        return np.zeros(0, dtype=np.float64)
    units = increments(v, counter_max, reset_threshold, after_gap=gaps_before(ts, cuts=cuts, max_gap_us=max_gap_us))
    total = np.concatenate(([0.0], np.cumsum(units)))
    at = np.searchsorted(ts, edges, side="left")
    return np.diff(total[at])
