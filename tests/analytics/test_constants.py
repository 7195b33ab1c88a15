"""The control chart constants against three independent sources: c4 from integrating the chi distribution,
d2 and d3 from integrating the range distribution of n normals, and values typed from Montgomery,
*Introduction to Statistical Quality Control*, Appendix VI (3 or 4 decimals as printed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plantlink.analytics import constants as k
from plantlink.errors import AnalysisError

NS = list(range(2, 26))
#: n: (A2, A3, c4, B3, B4, d2, d3, D3, D4) as printed in Montgomery's Appendix VI.
TABLE = {
    2: (1.880, 2.659, 0.7979, 0.000, 3.267, 1.128, 0.853, 0.000, 3.267),
    3: (1.023, 1.954, 0.8862, 0.000, 2.568, 1.693, 0.888, 0.000, 2.574),
    4: (0.729, 1.628, 0.9213, 0.000, 2.266, 2.059, 0.880, 0.000, 2.282),
    5: (0.577, 1.427, 0.9400, 0.000, 2.089, 2.326, 0.864, 0.000, 2.114),
    6: (0.483, 1.287, 0.9515, 0.030, 1.970, 2.534, 0.848, 0.000, 2.004),
    7: (0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924),
    8: (0.373, 1.099, 0.9650, 0.185, 1.815, 2.847, 0.820, 0.136, 1.864),
    9: (0.337, 1.032, 0.9693, 0.239, 1.761, 2.970, 0.808, 0.184, 1.816),
    10: (0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777),
    15: (0.223, 0.789, 0.9823, 0.428, 1.572, 3.472, 0.756, 0.347, 1.653),
    20: (0.180, 0.680, 0.9869, 0.510, 1.490, 3.735, 0.729, 0.415, 1.585),
    25: (0.153, 0.606, 0.9896, 0.565, 1.435, 3.931, 0.708, 0.459, 1.541),
}
#: E2 = 3 / d2(n) for the moving range of span n (Montgomery 6.4: 2.660 for n = 2).
E2 = {2: 2.660, 3: 1.772, 4: 1.457, 5: 1.290}


def _phi_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.array([math.erf(v / math.sqrt(2.0)) for v in x]))


def test_c4_against_the_mean_of_the_chi_distribution() -> None:
    """c4(n) = E[s] / sigma = E[chi_(n-1)] / sqrt(n - 1): integrate x times the chi density numerically."""
    x = np.linspace(0.0, 30.0, 300_001)
    for n in NS:
        nu = n - 1
        log_pdf = (nu - 1) * np.log(np.maximum(x, 1e-300)) - x * x / 2 - (nu / 2 - 1) * math.log(2) \
            - math.lgamma(nu / 2)
        mean = np.trapezoid(x * np.exp(log_pdf), x)
        assert float(k.c4(n)) == pytest.approx(mean / math.sqrt(nu), abs=1e-7), n


def test_d2_against_the_integral_of_the_range() -> None:
    """d2(n) = E[R] = integral of 1 - Phi(x)^n - (1 - Phi(x))^n over the real line."""
    x = np.linspace(-10, 10, 40_001)
    cdf = _phi_cdf(x)
    for n in NS:
        assert float(k.d2(n)) == pytest.approx(np.trapezoid(1 - cdf ** n - (1 - cdf) ** n, x), abs=6e-6), n


def test_d3_against_the_double_integral_of_the_range() -> None:
    """E[R^2] = 2 * integral over x < y of 1 - Phi(y)^n - (1 - Phi(x))^n + (Phi(y) - Phi(x))^n; d3 = its sd."""
    x = np.linspace(-7, 7, 1401)
    h = x[1] - x[0]
    cdf = _phi_cdf(x)
    fx, fy = np.meshgrid(cdf, cdf, indexing="ij")
    w = np.full(x.size, h)
    w[0] = w[-1] = h / 2
    weight = np.triu(np.outer(w, w), 1) + np.diag(w * w) / 2  # trapezoid over the triangle x < y
    for n in NS:
        g = 1 - fy ** n - (1 - fx) ** n + np.clip(fy - fx, 0, None) ** n
        er2 = 2 * float(np.sum(g * weight))
        d2 = np.trapezoid(1 - cdf ** n - (1 - cdf) ** n, x)
        assert float(k.d3(n)) == pytest.approx(math.sqrt(er2 - d2 * d2), abs=2e-4), n


@pytest.mark.parametrize("n", sorted(TABLE))
def test_factors_match_montgomery_appendix(n: int) -> None:
    a2, a3, c4, b3, b4, d2, d3, d3f, d4f = TABLE[n]
    got = (k.a2(n), k.a3(n), k.c4(n), k.b3(n), k.b4(n), k.d2(n), k.d3(n), k.d3_factor(n), k.d4_factor(n))
    want = (a2, a3, c4, b3, b4, d2, d3, d3f, d4f)
    names = ("A2", "A3", "c4", "B3", "B4", "d2", "d3", "D3", "D4")
    for name, g, w in zip(names, got, want, strict=True):
        tol = 6e-5 if name == "c4" else 1.5e-3  # the factors are printed rounded from rounded d2, d3
        assert float(g) == pytest.approx(w, abs=tol), f"{name}({n})"


def test_e2() -> None:
    for n, want in E2.items():
        assert float(k.e2(n)) == pytest.approx(want, abs=1.5e-3)  # printed as 3 / d2 with d2 rounded (1.128)


def test_sizes_outside_the_table_are_refused() -> None:
    for n in (1, 26):
        with pytest.raises(AnalysisError, match="subgroup size must be 2 to 25"):
            k.d2(n)
    with pytest.raises(AnalysisError):
        k.c4(np.array([5, 30]))
