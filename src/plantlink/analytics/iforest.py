"""scikit-learn's isolation forest as a River-style detector (see :mod:`plantlink.analytics.anomaly`)."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from plantlink.analytics.anomaly import Detector
from plantlink.analytics.baseline import MIN_ROWS_PER_VARIABLE, Matrix


class IsolationForestDetector(Detector):
    """Isolation forest on the standardized tags; score ``-score_samples`` (higher is more anomalous).

    The threshold is the ``quantile`` of the baseline's own scores: about ``1 - quantile`` of the baseline
    is flagged (in-sample, so fresh normal data is flagged somewhat more often).
    """

    def __init__(
        self,
        quantile: float = 0.99,
        n_estimators: int = 100,
        random_state: int = 0,
        min_rows_per_variable: int = MIN_ROWS_PER_VARIABLE,
    ) -> None:
        super().__init__(min_rows_per_variable)
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"IsolationForestDetector: quantile must be in (0, 1), got {quantile}")
        self.quantile, self.n_estimators, self.random_state = quantile, n_estimators, random_state

    def _fit(self, z: Matrix) -> None:
        self.forest = IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state, n_jobs=1)
        self.forest.fit(z)
        self.threshold = float(np.quantile(self._score(z), self.quantile))

    def _score(self, z: Matrix) -> Matrix:
        return np.asarray(-self.forest.score_samples(z), dtype=np.float64)
