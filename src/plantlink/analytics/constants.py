"""Control chart constants for subgroup sizes n = 2..25 (Montgomery, *Introduction to Statistical Quality
Control*, Appendix VI; ASTM E2587).

``D2`` (mean range of n standard normals) and ``D3`` (its standard deviation) are tabulated here to four or five
decimals: they have no closed form. ``C4`` follows from the gamma function. The chart factors derive from them
exactly as the tables print them (``A2 = 3 / (d2 sqrt n)``, ``D4 = 1 + 3 d3 / d2``, ...), so they agree with
the printed tables to their last decimal. tests/analytics/test_constants.py checks c4 against its gamma formula,
d2 and d3 against numerical integration and every factor against a handful of values typed from the tables.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from plantlink.analytics.names import N_MAX, N_MIN
from plantlink.errors import AnalysisError

#: d2(n), n = 2..25: E[range] of n independent standard normal values.
_D2 = (1.12838, 1.69257, 2.05875, 2.32593, 2.53441, 2.70436, 2.84720, 2.97003, 3.07751, 3.17287, 3.25846,
       3.33598, 3.40676, 3.47183, 3.53198, 3.58788, 3.64006, 3.68896, 3.73495, 3.77834, 3.81938, 3.85832,
       3.89535, 3.93063)
#: d3(n), n = 2..25: standard deviation of that range.
_D3 = (0.8525, 0.8884, 0.8798, 0.8641, 0.8480, 0.8332, 0.8198, 0.8078, 0.7971, 0.7873, 0.7785, 0.7704,
       0.7630, 0.7562, 0.7499, 0.7441, 0.7386, 0.7335, 0.7287, 0.7242, 0.7199, 0.7159, 0.7121, 0.7084)

Floats = npt.NDArray[np.float64]


def c4_exact(n: int) -> float:
    """c4(n) = sqrt(2 / (n - 1)) Γ(n / 2) / Γ((n - 1) / 2): E[s] / sigma for n normal values."""
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


#: c4(n), n = 2..25, from the formula (a table so that per-subgroup lookups stay vectorised).
_C4 = tuple(c4_exact(n) for n in range(N_MIN, N_MAX + 1))


def check_n(n: int | npt.NDArray[np.int64]) -> None:
    arr = np.asarray(n)
    if arr.size and (arr.min() < N_MIN or arr.max() > N_MAX):
        raise AnalysisError(f"subgroup size must be {N_MIN} to {N_MAX} for the tabulated constants, got "
                            f"{int(arr.min()) if arr.min() < N_MIN else int(arr.max())}", "subgroup_size")


def _at(table: tuple[float, ...], n: int | npt.NDArray[np.int64]) -> Floats:
    check_n(n)
    out: Floats = np.asarray(table, dtype=np.float64)[np.asarray(n) - N_MIN]
    return out


def d2(n: int | npt.NDArray[np.int64]) -> Floats:
    return _at(_D2, n)


def d3(n: int | npt.NDArray[np.int64]) -> Floats:
    return _at(_D3, n)


def c4(n: int | npt.NDArray[np.int64]) -> Floats:
    return _at(_C4, n)


def a2(n: int | npt.NDArray[np.int64]) -> Floats:
    return 3.0 / (d2(n) * np.sqrt(n))


def a3(n: int | npt.NDArray[np.int64]) -> Floats:
    return 3.0 / (c4(n) * np.sqrt(n))


def b3(n: int | npt.NDArray[np.int64]) -> Floats:
    c = c4(n)
    return np.maximum(0.0, 1.0 - 3.0 * np.sqrt(1.0 - c * c) / c)


def b4(n: int | npt.NDArray[np.int64]) -> Floats:
    c = c4(n)
    return 1.0 + 3.0 * np.sqrt(1.0 - c * c) / c


def d3_factor(n: int | npt.NDArray[np.int64]) -> Floats:
    """The R chart's lower factor D3 (not the standard deviation d3)."""
    return np.maximum(0.0, 1.0 - 3.0 * d3(n) / d2(n))


def d4_factor(n: int | npt.NDArray[np.int64]) -> Floats:
    return 1.0 + 3.0 * d3(n) / d2(n)


def e2(n: int | npt.NDArray[np.int64] = 2) -> Floats:
    """Individuals chart factor for a moving range of span n: 3 / d2(n) (2.660 for n = 2)."""
    return 3.0 / d2(n)
