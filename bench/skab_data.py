"""Load the SKAB benchmark (Skoltech Anomaly Benchmark, v0.9) and score detectors with its authors'
outlier-detection metric (bench/skab.py runs it).

Data: the ``data`` folder of the SKAB repository (``anomaly-free/``, ``valve1/``, ``valve2/``, ``other/``):
semicolon-separated CSVs, one row a second, 8 sensor columns then ``anomaly`` and ``changepoint``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path("/work/shared/data/skab/data")
LABELS = ("anomaly", "changepoint")


@dataclass(frozen=True)
class Experiment:
    name: str
    columns: tuple[str, ...]
    x: np.ndarray  # rows x 8 sensors
    anomaly: np.ndarray  # 0/1 per row


def load_csv(path: Path) -> Experiment:
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    head = rows[0]
    sensors = [i for i, c in enumerate(head) if c != "datetime" and c not in LABELS]
    data = np.array([[float(r[i]) for i in range(1, len(head))] for r in rows[1:]])
    names = [head[i] for i in range(1, len(head))]
    x = data[:, [names.index(head[i]) for i in sensors]]
    anomaly = data[:, names.index("anomaly")] if "anomaly" in names else np.zeros(len(data))
    return Experiment(f"{path.parent.name}/{path.stem}", tuple(head[i] for i in sensors), x, anomaly.astype(int))


def load(root: Path = DEFAULT_DIR) -> tuple[list[Experiment], Experiment]:
    """The 34 experiments with anomalies (valve1, valve2, other) and the anomaly-free file."""
    files = sorted(p for p in root.rglob("*.csv") if "anomaly-free" not in p.parts)
    if not files:
        raise SystemExit(f"no SKAB CSV under {root}")
    return [load_csv(p) for p in files], load_csv(root / "anomaly-free" / "anomaly-free.csv")


@dataclass
class Confusion:
    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, true: np.ndarray, pred: np.ndarray) -> None:
        t, p = true.astype(bool), pred.astype(bool)
        self.tp += int(np.sum(t & p))
        self.tn += int(np.sum(~t & ~p))
        self.fp += int(np.sum(~t & p))
        self.fn += int(np.sum(t & ~p))

    def f1(self) -> float:
        """SKAB's (tsad) F1: TP / (TP + (FN + FP) / 2), over all files' rows summed."""
        return self.tp / (self.tp + (self.fn + self.fp) / 2)

    def far(self) -> float:
        """False alarm rate, %: FP / (FP + TN)."""
        return 100 * self.fp / (self.fp + self.tn)

    def mar(self) -> float:
        """Missed alarm rate, %: FN / (FN + TP)."""
        return 100 * self.fn / (self.fn + self.tp)
