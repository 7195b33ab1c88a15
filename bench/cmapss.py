"""NASA C-MAPSS FD001 remaining-useful-life figures for plantlink.analytics.rul.RULEstimator.

Data (Saxena et al., PHM08): whitespace-separated rows ``unit cycle setting1..3 sensor1..21``;
train_FD001.txt holds 100 engines run to failure, test_FD001.txt 100 engines cut some time before failure,
RUL_FD001.txt the true RUL of each test engine after its last cycle.

Protocol (the official split): learn on train_FD001 only, predict at the last cycle of each test engine,
compare with RUL_FD001 as given (not capped). Figures, one JSON line each {"name", "value", "unit"}:
RMSE; the PHM08 score, sum over engines of exp(-d/13) - 1 when d < 0 (early) and exp(d/10) - 1 when
d >= 0 (late), d = predicted - true; RMSE against the truth capped at 125 (as some papers report);
coverage of the 90 % band; pickled model size; predict time per engine (features and three models);
fit time; and a baseline on the same features and target: a ridge regression (standardized features,
alpha 1.0, not tuned), its RMSE and score.

Inputs: the 21 sensors less those constant over the training set (sensor 1, 5, 10, 16, 18, 19 in FD001);
the three operating settings are left out (FD001 has one operating condition, per its readme).
Hyper-parameters (window x tree size, GRID) are chosen on the training set only: 5-fold cross-validation
grouped by engine; each held-out engine is cut at 5 random cycles (at least one window long) and the RMSE
there against the RUL capped at 125 picks the configuration (uncapped, the early cuts of long engines,
300 cycles from failure and showing nothing yet, would dominate it). The test labels choose nothing. The
windows stop at 30: the shortest test engine has 31 cycles (a property of the inputs, not of the labels).
The cap (125 cycles), learning rate (0.05), iterations (200) and leaf size (40) are usual values, not tuned.
Run: .venv/bin/python bench/cmapss.py [--data /work/shared/data/cmapss]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: the machine is shared (and an edge box is small)

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import SupportsFloat

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from plantlink.analytics.rul import RULEstimator, all_window_features, window_features

DEFAULT_DIR = Path("/work/shared/data/cmapss")
SENSORS = [f"sensor{i}" for i in range(1, 22)]
#: (window in cycles, max_leaf_nodes)
GRID = list(itertools.product((15, 20, 30), (7, 15)))
FOLDS, CUTS, SEED = 5, 5, 0


def load(path: Path) -> list[np.ndarray]:
    """Per engine, its rows (cycles, oldest first) x the 21 sensors."""
    a = np.loadtxt(path)
    return [a[a[:, 0] == u][np.argsort(a[a[:, 0] == u][:, 1]), 5:] for u in np.unique(a[:, 0])]


def phm08_score(d: np.ndarray) -> float:
    return float(np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1)))


def emit(name: str, value: SupportsFloat, unit: str) -> None:
    print(json.dumps({"name": f"cmapss_fd001_{name}", "value": round(float(value), 4), "unit": unit}))


def cv_rmse(train: list[np.ndarray], names: list[str], window: int, leaves: int) -> float:
    """Grouped-by-engine cross-validated RMSE at random cuts of the held-out engines (truth capped)."""
    rng = np.random.default_rng(SEED)
    folds = np.array_split(rng.permutation(len(train)), FOLDS)
    errors: list[float] = []
    for held in folds:
        held_set = set(held.tolist())
        est = RULEstimator(names, window=window, max_leaf_nodes=leaves)
        X, y, _ = est.training_set([u for i, u in enumerate(train) if i not in held_set])
        est.fit_features(X, y, band=False)
        for i in held:
            f = all_window_features(train[i], window)  # row j: history of window + j cycles
            cut = rng.integers(0, len(f), CUTS)
            pred = np.array([e.rul for e in est.predict_features(f[cut])])
            errors.extend(pred - np.minimum(len(f) - 1 - cut, est.cap))
    return float(np.sqrt(np.mean(np.square(errors))))


def ridge_baseline(est: RULEstimator, train: list[np.ndarray], test: list[np.ndarray]) -> np.ndarray:
    """A linear model on the same window features and capped target, its predictions clipped to [0, cap]."""
    X, y, _ = est.training_set(train)
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X, y)
    Xt = np.vstack([window_features(u, est.window) for u in test])
    return np.asarray(np.clip(model.predict(Xt), 0, est.cap))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args()
    train, test = load(args.data / "train_FD001.txt"), load(args.data / "test_FD001.txt")
    truth = np.loadtxt(args.data / "RUL_FD001.txt")
    keep = [j for j in range(21) if np.std(np.vstack(train)[:, j]) > 1e-4]
    names = [SENSORS[j] for j in keep]
    train, test = [u[:, keep] for u in train], [u[:, keep] for u in test]
    print(f"{len(train)} training engines, {len(test)} test engines; sensors {names}", file=sys.stderr)

    t0 = time.process_time()
    scores = {cfg: cv_rmse(train, names, *cfg) for cfg in GRID}
    window, leaves = min(scores, key=scores.__getitem__)
    print(f"cross-validated RMSE (window, max_leaf_nodes): {scores}; chosen {(window, leaves)}; "
          f"{time.process_time() - t0:.0f} s CPU", file=sys.stderr)
    emit("cv_rmse_capped", scores[(window, leaves)], "cycles")

    t0 = time.process_time()
    est = RULEstimator(names, window=window, max_leaf_nodes=leaves).fit(train)
    fit_s = time.process_time() - t0
    t0 = time.perf_counter()
    preds = [est.predict(u) for u in test]
    predict_ms = 1000 * (time.perf_counter() - t0) / len(test)
    rul = np.array([p.rul for p in preds])
    d = rul - truth
    emit("rmse", np.sqrt(np.mean(d**2)), "cycles")
    emit("score", phm08_score(d), "score")
    emit("rmse_capped_truth", np.sqrt(np.mean((rul - np.minimum(truth, est.cap)) ** 2)), "cycles")
    emit("band90_coverage", np.mean([p.lower <= t <= p.upper for p, t in zip(preds, truth, strict=True)]), "ratio")
    emit("band90_mean_width", np.mean([p.upper - p.lower for p in preds]), "cycles")
    emit("model_size", est.size_bytes(), "bytes")
    emit("predict_time_per_unit", predict_ms, "ms")
    emit("fit_time", fit_s, "s CPU")
    ridge_d = ridge_baseline(est, train, test) - truth
    emit("ridge_rmse", np.sqrt(np.mean(ridge_d**2)), "cycles")
    emit("ridge_score", phm08_score(ridge_d), "score")
    emit("window", window, "cycles")
    emit("max_leaf_nodes", leaves, "leaves")


if __name__ == "__main__":
    main()
