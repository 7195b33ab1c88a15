"""Turn a machine's tags into a checked float matrix for the anomaly detectors.

A baseline (or a batch to score) is a 2-D numpy array (rows are instants, columns are tags) or an Arrow
table whose numeric columns are the tags. Bad input is refused with an error that names the column and
says why: too few rows, a constant column, NaN or infinite values, a missing or non-numeric column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from plantlink.errors import BaselineError  # a baseline or a batch a detector cannot use (an AnalysisError)

Matrix = npt.NDArray[np.float64]

#: the fewest baseline rows per variable (tag): below that the covariance is too poorly known
MIN_ROWS_PER_VARIABLE = 5


__all__ = ["BaselineError", "Matrix", "Standardizer", "check_finite", "fit_standardizer", "to_matrix"]


@dataclass(frozen=True)
class Standardizer:
    """Centre and scale with the baseline's mean and sample standard deviation (ddof=1)."""

    columns: tuple[str, ...]
    mean: Matrix
    std: Matrix

    def transform(self, x: Matrix) -> Matrix:
        return (x - self.mean) / self.std


def to_matrix(data: Any, columns: Sequence[str] | None = None, what: str = "batch") -> tuple[Matrix, tuple[str, ...]]:
    """A 2-D float64 matrix and its column names from a numpy array or an Arrow table.

    ``columns`` selects (and orders) the tags of an Arrow table; for an array it only names them.
    """
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return _table_matrix(data, columns, what)
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise BaselineError(f"{what}: expected a 2-D array (rows x tags), got {x.ndim} dimensions")
    names = tuple(columns) if columns is not None else tuple(f"x{i}" for i in range(x.shape[1]))
    if len(names) != x.shape[1]:
        raise BaselineError(f"{what}: {x.shape[1]} columns but {len(names)} tag names ({', '.join(names)})")
    return x, names


def _table_matrix(table: pa.Table, columns: Sequence[str] | None, what: str) -> tuple[Matrix, tuple[str, ...]]:
    names = tuple(columns) if columns is not None else tuple(
        f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    )
    if not names:
        raise BaselineError(f"{what}: the Arrow table has no numeric column")
    cols = []
    for name in names:
        if name not in table.column_names:
            raise BaselineError(f"{what}: column {name!r} is missing (the table has {', '.join(table.column_names)})")
        col = table.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise BaselineError(f"{what}: column {name!r} is {col.type}, not numeric")
        cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    return np.column_stack(cols), names


def check_finite(x: Matrix, names: Sequence[str], what: str) -> None:
    """Refuse NaN or infinite values, naming the first bad column and how many rows are hit."""
    bad = ~np.isfinite(x)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        rows = np.flatnonzero(bad[:, j])
        raise BaselineError(
            f"{what}: column {names[j]!r} has {rows.size} NaN or infinite value(s) (first at row {rows[0]}); "
            "fill or drop those rows first"
        )


def fit_standardizer(
    x: Matrix, names: Sequence[str], min_rows_per_variable: int = MIN_ROWS_PER_VARIABLE
) -> Standardizer:
    """Check a baseline (enough rows, finite, no constant column) and learn its mean and std."""
    n, p = x.shape
    need = max(min_rows_per_variable * p, p + 2)
    if n < need:
        raise BaselineError(
            f"baseline: {n} rows for {p} tags; at least {need} are needed "
            f"({min_rows_per_variable} per tag) to estimate their covariance"
        )
    check_finite(x, names, "baseline")
    std = x.std(axis=0, ddof=1)
    scale = np.maximum(np.abs(x).max(axis=0), 1.0)
    constant = [names[j] for j in range(p) if std[j] <= 1e-12 * scale[j]]
    if constant:
        raise BaselineError(
            f"baseline: column(s) {', '.join(map(repr, constant))} are constant over the baseline "
            "(no variance to standardize with); leave them out of the detector's tags"
        )
    return Standardizer(tuple(names), x.mean(axis=0), std)
