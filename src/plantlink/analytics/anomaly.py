"""Multivariate anomaly detectors for a machine's tags, in the River style.

``learn_many(X)`` learns a baseline (normal operation), ``score_one(x)`` / ``score_many(X)`` score new
instants, ``is_anomaly(score)`` compares a score with the detector's threshold. ``X`` is a 2-D numpy array
(rows are instants, columns tags) or an Arrow table of the tags; ``x`` is one row or a ``{tag: value}`` dict.

* :class:`PCADetector`: PCA on the standardized baseline, Hotelling's T² on the retained components and
  the squared prediction error (SPE, Q) on the residual ones, with their limits (T² from the F
  distribution, Q from Jackson and Mudholkar). Its score is ``max(T²/T²_lim, Q/Q_lim)``: above 1 is an
  anomaly. Options ``lags`` (dynamic PCA: each row extended with the tags' ``lags`` previous rows) and
  ``smooth`` (a trailing median of T² and Q over ``smooth`` rows before the limits): ``lags=1, smooth=5`` is
  the configuration measured on SKAB (docs/analytics.md). With them, scoring needs the series' history:
  ``stream()`` keeps it between batches (:mod:`plantlink.analytics.dynamic`).
* :class:`plantlink.analytics.iforest.IsolationForestDetector`: scikit-learn's isolation forest, its
  threshold a quantile of the baseline's scores.
* :class:`WindowRule`: alarm only when ``min_hits`` of the last ``window`` instants are anomalous;
  :class:`MovingAverageRule`: alarm when the mean of the last ``window`` scores is above the threshold.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from plantlink.analytics.baseline import (
    MIN_ROWS_PER_VARIABLE,
    BaselineError,
    Matrix,
    Standardizer,
    check_finite,
    fit_standardizer,
    to_matrix,
)
from plantlink.analytics.dynamic import (
    DetectorStream,
    PCAStream,
    StatelessStream,
    check_options,
    lagged,
    lagged_names,
)

__all__ = [
    "BaselineError",
    "Detector",
    "MovingAverageRule",
    "PCADetector",
    "WindowRule",
    "jackson_mudholkar_limit",
    "t2_limit",
]


class Detector(ABC):
    """A detector learnt on a baseline; higher scores are more anomalous."""

    threshold: float = math.inf
    columns: tuple[str, ...] = ()
    #: history options (only PCADetector sets them; class defaults so that models pickled before them load)
    lags: int = 0
    smooth: int = 1

    def __init__(self, min_rows_per_variable: int = MIN_ROWS_PER_VARIABLE) -> None:
        self.min_rows_per_variable = min_rows_per_variable
        self._scaler: Standardizer | None = None

    def learn_many(self, X: Any, columns: Sequence[str] | None = None) -> Self:
        """Learn the baseline ``X`` (normal operation only); ``columns`` picks or names the tags."""
        x, names = to_matrix(X, columns, "baseline")
        self._scaler = fit_standardizer(x, names, self.min_rows_per_variable)
        self.columns = names
        self._fit(self._scaler.transform(x))
        return self

    def score_many(self, X: Any) -> Matrix:
        """One score per row of ``X`` (an array with the baseline's columns, or an Arrow table)."""
        return self._score(self._standardized(X))

    def stream(self) -> DetectorStream:
        """A scoring state for one series, scored batch by batch in time order."""
        return StatelessStream(self)

    def score_one(self, x: Mapping[str, float] | Sequence[float] | Matrix) -> float:
        """The score of one instant: a row of values in the baseline's column order, or a ``{tag: value}``."""
        if self.lags or self.smooth > 1:
            raise ValueError(f"{type(self).__name__} with lags or smooth scores a series: use stream().score_many")
        if isinstance(x, Mapping):
            missing = [c for c in self.columns if c not in x]
            if missing:
                raise BaselineError(f"score_one: tag(s) {', '.join(map(repr, missing))} missing from the instant")
            x = [x[c] for c in self.columns]
        return float(self.score_many(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])

    def is_anomaly(self, score: float) -> bool:
        return bool(score > self.threshold)

    def predict_many(self, X: Any) -> np.ndarray:
        """True where a row's score is above the threshold."""
        return np.asarray(self.score_many(X) > self.threshold)

    def _standardized(self, X: Any) -> Matrix:
        return self._z(self._checked(X))

    def _checked(self, X: Any) -> Matrix:
        """``X`` as a finite matrix with the baseline's columns."""
        if self._scaler is None:
            raise RuntimeError(f"{type(self).__name__}: call learn_many(baseline) before scoring")
        names = self.columns if not isinstance(X, np.ndarray | list | tuple) else None
        x, _ = to_matrix(X, names, "batch")
        if x.shape[1] != len(self.columns):
            cols = ", ".join(self.columns)
            raise BaselineError(f"batch: {x.shape[1]} columns, the baseline has {len(self.columns)} ({cols})")
        check_finite(x, self.columns, "batch")
        return x

    def _z(self, x: Matrix) -> Matrix:
        assert self._scaler is not None
        return self._scaler.transform(x)

    @abstractmethod
    def _fit(self, z: Matrix) -> None: ...

    @abstractmethod
    def _score(self, z: Matrix) -> Matrix: ...


def t2_limit(k: int, n: int, alpha: float) -> float:
    """Upper limit of Hotelling's T² for a NEW observation, k components learnt on n baseline rows.

    ``k (n-1) (n+1) / (n (n-k)) F(1-alpha; k, n-k)`` (phase II limit; Montgomery, Tracy et al. 1992).
    """
    from scipy import stats  # scipy.stats takes ~0.5 s to import: only when a limit is computed

    return float(k * (n - 1) * (n + 1) / (n * (n - k)) * stats.f.ppf(1.0 - alpha, k, n - k))


def jackson_mudholkar_limit(residual_eigenvalues: Matrix, alpha: float) -> float:
    """Jackson and Mudholkar (1979) upper limit of the SPE (Q) from the residual eigenvalues."""
    lam = np.asarray(residual_eigenvalues, dtype=np.float64)
    theta1, theta2, theta3 = (float(np.sum(lam**i)) for i in (1, 2, 3))
    if theta1 <= 0.0 or theta2 <= 0.0:
        return math.inf
    h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2**2)
    from scipy import stats  # see t2_limit

    c = float(stats.norm.ppf(1.0 - alpha))
    base = c * math.sqrt(2.0 * theta2 * h0**2) / theta1 + 1.0 + theta2 * h0 * (h0 - 1.0) / theta1**2
    return float(theta1 * base ** (1.0 / h0))


class PCADetector(Detector):
    """PCA with Hotelling's T² and SPE (Q) statistics.

    ``variance``: keep the fewest components whose eigenvalues explain at least this share of the
    standardized baseline's variance (or give ``n_components``); ``alpha``: the false-alarm
    probability of each limit (the combined rule alarms on either, so up to about ``2 alpha``).
    ``lags``: dynamic PCA, each row extended with the ``lags`` previous rows (the baseline too; the
    scaler and PCA are fitted on the extended baseline); ``smooth``: T² and Q are each the trailing median
    over ``smooth`` rows before the limits. A row without ``lags`` earlier rows, or whose median window
    reaches before the series' first row, has a NaN score (never an anomaly). ``score_many`` scores one
    whole series; ``stream()`` scores a series batch by batch with the same result.
    """

    def __init__(
        self,
        variance: float = 0.90,
        alpha: float = 0.01,
        n_components: int | None = None,
        min_rows_per_variable: int = MIN_ROWS_PER_VARIABLE,
        lags: int = 0,
        smooth: int = 1,
    ) -> None:
        super().__init__(min_rows_per_variable)
        try:
            check_options(lags, smooth)
        except ValueError as e:
            raise ValueError(f"PCADetector: {e}") from None
        self.lags, self.smooth = int(lags), int(smooth)
        if not 0.0 < variance <= 1.0:
            raise ValueError(f"PCADetector: variance must be in (0, 1], got {variance}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"PCADetector: alpha must be in (0, 1), got {alpha}")
        self.variance, self.alpha, self.n_components = variance, alpha, n_components
        self.threshold = 1.0

    def learn_many(self, X: Any, columns: Sequence[str] | None = None) -> Self:
        """Learn the baseline ``X`` (rows in time order when ``lags`` > 0: the extended rows are built from it)."""
        x, names = to_matrix(X, columns, "baseline")
        check_finite(x, names, "baseline")
        xl = lagged(x, self.lags)
        self._scaler = fit_standardizer(xl, lagged_names(names, self.lags), self.min_rows_per_variable)
        self.columns = names
        self._fit(self._scaler.transform(xl))
        return self

    def stream(self) -> PCAStream:
        return PCAStream(self)

    def score_many(self, X: Any) -> Matrix:
        """One score per row of ``X``, ``X`` being one whole series (see ``stream()`` for batches)."""
        return self.stream().score_many(X)

    def _fit(self, z: Matrix) -> None:
        n, p = z.shape
        eigval, eigvec = np.linalg.eigh(np.cov(z, rowvar=False))
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
        k = self.n_components or int(np.searchsorted(np.cumsum(eigval) / eigval.sum(), self.variance - 1e-12) + 1)
        if not 1 <= k <= p:
            raise ValueError(f"PCADetector: n_components must be in 1..{p}, got {k}")
        self.k = k
        self.eigenvalues = eigval
        self.loadings = eigvec[:, :k]
        self.t2_limit = t2_limit(k, n, self.alpha)
        self.q_limit = jackson_mudholkar_limit(eigval[k:], self.alpha) if k < p else math.inf

    def statistics(self, X: Any) -> tuple[Matrix, Matrix]:
        """Hotelling's T² and the SPE (Q) of each row of ``X`` (unsmoothed; NaN for the first ``lags`` rows)."""
        return self.stream().statistics(X)

    def _stats(self, z: Matrix) -> tuple[Matrix, Matrix]:
        # row by row products, not BLAS: a row's result must not depend on the batch it came in (a matrix
        # product's summation order can), so that streaming equals scoring the whole series exactly
        t = np.sum(z[:, :, None] * self.loadings[None, :, :], axis=1)
        t2 = np.sum(t**2 / self.eigenvalues[: self.k], axis=1)
        residual = z - np.sum(t[:, None, :] * self.loadings[None, :, :], axis=2)
        return t2, np.sum(residual**2, axis=1)

    def _score(self, z: Matrix) -> Matrix:
        return self._combine(*self._stats(z))

    def _combine(self, t2: Matrix, q: Matrix) -> Matrix:
        score = t2 / self.t2_limit
        if math.isfinite(self.q_limit):
            score = np.maximum(score, q / self.q_limit)
        return score


class WindowRule:
    """Alarm when at least ``min_hits`` of the last ``window`` instants score above the detector's threshold.

    Streaming: the last flags are kept between calls (``reset()`` forgets them). ``window=3, min_hits=2``
    is a rolling median of the 0/1 flags over 3 instants.
    """

    def __init__(self, detector: Detector, window: int = 3, min_hits: int = 2) -> None:
        if not 1 <= min_hits <= window:
            raise ValueError(f"WindowRule: need 1 <= min_hits <= window, got {min_hits} of {window}")
        self.detector, self.window, self.min_hits = detector, window, min_hits
        self._flags: deque[bool] = deque(maxlen=window)

    def reset(self) -> None:
        self._flags.clear()

    def update_one(self, x: Mapping[str, float] | Sequence[float] | Matrix) -> bool:
        self._flags.append(self.detector.is_anomaly(self.detector.score_one(x)))
        return sum(self._flags) >= self.min_hits

    def predict_many(self, X: Any) -> np.ndarray:
        flags = self.detector.predict_many(X)
        prior = np.array(self._flags, dtype=bool)
        both = np.concatenate([prior, flags]).astype(np.int64)
        counts = np.convolve(both, np.ones(self.window, dtype=np.int64))[: both.size]
        self._flags.extend(bool(f) for f in flags)
        return np.asarray(counts[prior.size :] >= self.min_hits)


class MovingAverageRule:
    """Alarm when the mean of the last ``window`` scores is above the detector's threshold.

    Streaming: the last scores are kept between calls (``reset()`` forgets them); until ``window``
    scores have been seen, the mean is over those seen so far.
    """

    def __init__(self, detector: Detector, window: int = 10) -> None:
        if window < 1:
            raise ValueError(f"MovingAverageRule: window must be >= 1, got {window}")
        self.detector, self.window = detector, window
        self._scores: deque[float] = deque(maxlen=window)

    def reset(self) -> None:
        self._scores.clear()

    def update_one(self, x: Mapping[str, float] | Sequence[float] | Matrix) -> bool:
        self._scores.append(self.detector.score_one(x))
        return self.detector.is_anomaly(sum(self._scores) / len(self._scores))

    def smoothed_many(self, X: Any) -> Matrix:
        """The trailing mean score of each row of ``X`` (continuing from earlier calls)."""
        prior = np.array(self._scores, dtype=np.float64)
        scores = self.detector.score_many(X)
        both = np.concatenate([prior, scores])
        csum = np.concatenate([[0.0], np.cumsum(both)])
        end = np.arange(prior.size, both.size) + 1
        start = np.maximum(0, end - self.window)
        self._scores.extend(float(s) for s in scores)
        return np.asarray((csum[end] - csum[start]) / (end - start))

    def predict_many(self, X: Any) -> np.ndarray:
        return np.asarray(self.smoothed_many(X) > self.detector.threshold)
