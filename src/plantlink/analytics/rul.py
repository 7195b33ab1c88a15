"""Remaining useful life (RUL) of a machine from the recent history of its wear sensors.

A small estimator meant for an edge box: for each sensor, features over a sliding window of the last
``window`` cycles (the last value, the window's mean and its least-squares slope) plus the machine's age in
cycles; the target is the piecewise-linear RUL capped at ``cap`` cycles (the usual C-MAPSS convention: a
machine far from failure shows no sign of it, so "at least ``cap``" is all one can say); three
scikit-learn histogram gradient-boosting models, one for the mean RUL and two quantile models for the
band (``quantiles``, 5 % and 95 % by default: a nominal 90 % band).

``fit(units)`` learns from run-to-failure histories (each unit's last row is its failure cycle);
``predict(history)`` takes one machine's history so far and returns an :class:`RULEstimate` (cycles,
with its band); :meth:`RULEstimate.failure_at` turns it into dates given the cycle period.

A history is a 2-D array (rows are cycles, oldest first; columns the sensors, in ``sensors`` order) or a
``{sensor: 1-D array}`` mapping.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from threadpoolctl import threadpool_limits

from plantlink.errors import RULError  # bad input to the estimator (an AnalysisError: 400 bad_data)

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

__all__ = ["RULError", "RULEstimate", "RULEstimator", "window_features"]

History = np.ndarray | Mapping[str, Any]
#: The boosted trees run on one OpenMP thread. On an edge box that also serves connectors and the HMI, the
#: default (every core, spinning while waiting) took minutes instead of seconds to fit when the cores were
#: busy; one thread is predictable.
ONE_THREAD = 1




@dataclass(frozen=True)
class RULEstimate:
    """Remaining useful life in cycles after the last cycle seen, with its band (``lower <= rul <= upper``)."""

    rul: float
    lower: float
    upper: float
    cap: float

    @property
    def censored(self) -> bool:
        """True when the estimate is at the cap: the machine shows no sign of wear yet (RUL is "at least")."""
        return self.rul >= self.cap - 0.5

    def failure_at(self, last: datetime, cycle_period: timedelta) -> tuple[datetime, datetime, datetime]:
        """Earliest, expected and latest failure dates, the last cycle seen having ended at ``last``."""
        if cycle_period <= timedelta(0):
            raise RULError(f"cycle period must be positive, got {cycle_period}")
        return tuple(last + cycle_period * v for v in (self.lower, self.rul, self.upper))  # type: ignore[return-value]


def lsq_slope(y: np.ndarray) -> np.ndarray:
    """Least-squares slope per column of ``y`` (rows are equally spaced cycles)."""
    n = len(y)
    t = np.arange(n) - (n - 1) / 2
    slope: np.ndarray = (t @ (y - y.mean(axis=0))) / float(t @ t)
    return slope


def window_features(x: np.ndarray, window: int) -> np.ndarray:
    """Features of the last ``window`` rows of ``x`` (cycles x sensors): last value, mean and slope of each
    sensor, then the age (number of rows)."""
    w = x[-window:]
    return np.concatenate([w[-1], w.mean(axis=0), lsq_slope(w), [float(len(x))]])


def all_window_features(x: np.ndarray, window: int) -> np.ndarray:
    """:func:`window_features` at every row from ``window - 1`` on (vectorized; one row per cycle)."""
    n = len(x)
    wins = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (n - window + 1, k, window)
    t = np.arange(window) - (window - 1) / 2
    mean = wins.mean(axis=2)
    slope = ((wins - mean[..., None]) @ t) / float(t @ t)
    age = np.arange(window, n + 1, dtype=float)[:, None]
    return np.hstack([x[window - 1:], mean, slope, age])


class RULEstimator:
    """Remaining-useful-life regressor over window features; see the module's docstring."""

    def __init__(self, sensors: Sequence[str], window: int = 30, cap: float = 125.0,
                 quantiles: tuple[float, float] = (0.05, 0.95), max_iter: int = 200,
                 learning_rate: float = 0.05, max_leaf_nodes: int = 15, min_samples_leaf: int = 40,
                 random_state: int = 0) -> None:
        if not sensors:
            raise RULError("RULEstimator needs at least one sensor")
        if len(set(sensors)) != len(sensors):
            raise RULError(f"duplicate sensor names: {list(sensors)}")
        if window < 2:
            raise RULError(f"window must be at least 2 cycles (a slope needs two), got {window}")
        if not 0 < quantiles[0] < quantiles[1] < 1:
            raise RULError(f"quantiles must satisfy 0 < lower < upper < 1, got {quantiles}")
        self.sensors = tuple(sensors)
        self.window, self.cap, self.quantiles = window, float(cap), quantiles
        self._params = dict(max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                            min_samples_leaf=min_samples_leaf, random_state=random_state)
        self._models: dict[str, HistGradientBoostingRegressor] = {}

    # -- input checks ---------------------------------------------------------------------------------
    def to_matrix(self, history: History, where: str = "history") -> np.ndarray:
        """The history as a float matrix (cycles x sensors), checked: every sensor, no NaN, long enough."""
        if isinstance(history, Mapping):
            missing = [s for s in self.sensors if s not in history]
            if missing:
                raise RULError(f"{where}: missing sensor(s) {missing} (the estimator uses {list(self.sensors)})")
            cols = [np.asarray(history[s], dtype=float) for s in self.sensors]
            lengths = {s: len(c) for s, c in zip(self.sensors, cols, strict=True)}
            if len(set(lengths.values())) > 1:
                raise RULError(f"{where}: sensors have different lengths {lengths}")
            x = np.column_stack(cols) if cols[0].ndim == 1 else np.empty((0, len(cols)))
        else:
            x = np.asarray(history, dtype=float)
            if x.ndim != 2 or x.shape[1] != len(self.sensors):
                raise RULError(f"{where}: expected a (cycles x {len(self.sensors)}) array for sensors "
                               f"{list(self.sensors)}, got shape {x.shape}")
        if len(x) < self.window:
            raise RULError(f"{where}: history too short: {len(x)} cycle(s), the estimator needs at least "
                           f"{self.window} (its window)")
        bad = ~np.isfinite(x)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise RULError(f"{where}: sensor {self.sensors[col]!r} is not finite ({x[row, col]}) at cycle "
                           f"{row + 1} ({int(bad.sum())} non-finite value(s) in all)")
        return x

    # -- learning -------------------------------------------------------------------------------------
    def training_set(self, units: Sequence[History]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features, capped RUL targets and unit indices of every window of the run-to-failure ``units``."""
        if not units:
            raise RULError("fit needs at least one run-to-failure unit")
        feats, targets, groups = [], [], []
        for i, u in enumerate(units):
            x = self.to_matrix(u, where=f"unit {i}")
            f = all_window_features(x, self.window)
            rul = np.arange(len(x) - self.window, -1, -1, dtype=float)  # 0 at the failure cycle
            feats.append(f)
            targets.append(np.minimum(rul, self.cap))
            groups.append(np.full(len(f), i))
        return np.vstack(feats), np.concatenate(targets), np.concatenate(groups)

    def fit(self, units: Sequence[History]) -> Self:
        """Learn from run-to-failure histories: each unit's last row is the cycle it failed at."""
        X, y, _ = self.training_set(units)
        self.fit_features(X, y)
        return self

    def fit_features(self, X: np.ndarray, y: np.ndarray, band: bool = True) -> Self:
        """Learn from precomputed :meth:`training_set` features (cross-validation reuses them); without
        ``band`` only the mean model is fitted (enough to choose hyper-parameters)."""
        lo, hi = self.quantiles
        self._models = {"mean": self._model()}
        if band:
            self._models |= {"lower": self._model(quantile=lo), "upper": self._model(quantile=hi)}
        with threadpool_limits(ONE_THREAD):
            for m in self._models.values():
                m.fit(X, y)
        return self

    def _model(self, quantile: float | None = None) -> HistGradientBoostingRegressor:
        # scikit-learn takes ~0.5 s to import: only when a model is fitted, not in every process that serves
        from sklearn.ensemble import HistGradientBoostingRegressor

        if quantile is None:
            return HistGradientBoostingRegressor(**self._params)
        return HistGradientBoostingRegressor(loss="quantile", quantile=quantile, **self._params)

    # -- prediction -----------------------------------------------------------------------------------
    def predict(self, history: History) -> RULEstimate:
        """RUL after the last cycle of ``history`` (one machine's cycles so far, oldest first)."""
        x = self.to_matrix(history)
        return self.predict_features(window_features(x, self.window)[None, :])[0]

    def predict_features(self, X: np.ndarray) -> list[RULEstimate]:
        if not self._models:
            raise RULError("the RUL estimator is not fitted: call fit(units) first")
        with threadpool_limits(ONE_THREAD):
            m = np.clip(self._models["mean"].predict(X), 0.0, self.cap)
            if "lower" not in self._models:
                return [RULEstimate(float(a), float(a), float(a), self.cap) for a in m]
            lo, hi = (np.clip(self._models[k].predict(X), 0.0, self.cap) for k in ("lower", "upper"))
        return [RULEstimate(float(a), float(min(b, a)), float(max(c, a)), self.cap)
                for a, b, c in zip(m, lo, hi, strict=True)]

    def size_bytes(self) -> int:
        """Size of the fitted estimator pickled (what an edge box would store)."""
        return len(pickle.dumps(self))
