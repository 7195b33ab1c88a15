"""Dynamic PCA's building blocks: the lagged ("extended") matrix, the trailing median of a statistic, and
the streaming state that makes scoring batch by batch equal to scoring the whole series at once.

Dynamic PCA (Ku, Storer and Georgakis 1995) runs PCA T² + Q on rows made of an instant's tags followed by
the same tags ``lags`` instants before, so the model also learns how each tag moves from one instant to
the next. The SKAB authors' T² + Q run then takes a trailing median of each statistic over ``smooth``
rows before comparing it with its limit. Rows without a full history (the first ``lags`` rows) and
medians over a window that reaches before the first row are NaN: no score, never an alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from plantlink.analytics.baseline import Matrix

if TYPE_CHECKING:
    from plantlink.analytics.anomaly import Detector, PCADetector

__all__ = ["DetectorStream", "PCAStream", "StatelessStream", "lagged", "lagged_names", "trailing_median"]

#: the sensible upper bounds of the options (the plant model enforces them)
MAX_LAGS, MAX_SMOOTH = 10, 120


def check_options(lags: int, smooth: int) -> None:
    """``lags`` in 0..MAX_LAGS and ``smooth`` in 1..MAX_SMOOTH, both ints."""
    for name, v, lo, hi in (("lags", lags, 0, MAX_LAGS), ("smooth", smooth, 1, MAX_SMOOTH)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
            raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")


def lagged(x: Matrix, lags: int) -> Matrix:
    """Rows ``lags``.. of ``x``, each followed by its ``lags`` previous rows (the extended matrix):
    row ``i`` of the result is ``x[i+lags], x[i+lags-1], ..., x[i]`` side by side."""
    if lags == 0:
        return x
    n = x.shape[0]
    return np.hstack([x[lags - j : n - j] for j in range(lags + 1)])


def lagged_names(names: Sequence[str], lags: int) -> tuple[str, ...]:
    """The extended matrix's column names: ``tag``, then ``tag[t-1]`` .. ``tag[t-lags]``."""
    return tuple(names) + tuple(f"{n}[t-{j}]" for j in range(1, lags + 1) for n in names)


def trailing_median(prior: Matrix, a: Matrix, window: int) -> Matrix:
    """The median of each value of ``a`` with the ``window - 1`` values before it (``prior`` holds the
    ``window - 1`` values before ``a[0]``; NaN where unknown, which makes the median NaN)."""
    if window == 1:
        return a
    both = np.concatenate([prior, a])
    with np.errstate(invalid="ignore"):
        return np.asarray(np.median(np.lib.stride_tricks.sliding_window_view(both, window), axis=1))


class DetectorStream(Protocol):
    """Scores successive batches of one series (a machine's rows in time order), keeping what it needs."""

    def score_many(self, X: Any) -> Matrix: ...


class StatelessStream:
    """A detector that needs no history: each batch is scored on its own."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def score_many(self, X: Any) -> Matrix:
        return self.detector.score_many(X)


class PCAStream:
    """A :class:`PCADetector`'s scoring state: the last ``lags`` rows and the last ``smooth - 1`` T² and Q
    values, so that scoring a series batch by batch gives exactly the scores of the whole series at once
    (``PCADetector.score_many`` is a fresh stream)."""

    def __init__(self, detector: PCADetector) -> None:
        self.detector = detector
        p, lags, smooth = len(detector.columns), detector.lags, detector.smooth
        self._rows: Matrix = np.full((lags, p), np.nan)
        self._t2: Matrix = np.full(smooth - 1, np.nan)
        self._q: Matrix = np.full(smooth - 1, np.nan)

    def statistics(self, X: Any) -> tuple[Matrix, Matrix]:
        """Raw (unsmoothed) T² and Q of each row of ``X``; NaN for rows without ``lags`` earlier rows."""
        d = self.detector
        x = d._checked(X)
        full = np.concatenate([self._rows, x])
        self._rows = full[full.shape[0] - d.lags :].copy()
        return d._stats(d._z(lagged(full, d.lags)))

    def smoothed(self, X: Any) -> tuple[Matrix, Matrix]:
        """T² and Q of each row of ``X``, each the trailing median over ``smooth`` rows."""
        t2, q = self.statistics(X)
        w = self.detector.smooth
        t2m, qm = trailing_median(self._t2, t2, w), trailing_median(self._q, q, w)
        if w > 1:
            self._t2 = np.concatenate([self._t2, t2])[-(w - 1) :]
            self._q = np.concatenate([self._q, q])[-(w - 1) :]
        return t2m, qm

    def score_many(self, X: Any) -> Matrix:
        """``max(T²/T²_lim, Q/Q_lim)`` of the smoothed statistics; NaN (no score) without a full history."""
        return self.detector._combine(*self.smoothed(X))
