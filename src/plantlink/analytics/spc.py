"""Control charts: X-bar R, X-bar S, individuals and moving range, p, u, EWMA and tabular CUSUM.

Pure numpy: each function takes the samples (or counts) and returns a ``ChartSet`` of one or two ``Chart``s with
the plotted statistic, the centre line and the control limits *per point* (constant for X-bar R and I-MR; per
subgroup size for X-bar S with unequal subgroups, p and u; time-varying for EWMA), plus the per-point standard
error (``sigma``) that the zone rules of ``spc_rules`` use. Limits come from the tabulated constants
(``plantlink.analytics.constants``); formulas and sources: docs/analytics.md, section SPC.

Data that cannot give limits (too few subgroups or points, no variation, a subgroup size outside 2..25, counts
that do not fit) raise ``AnalysisError`` (400 ``bad_data``); the service adds the tag and period to the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantlink.analytics import constants as k
from plantlink.errors import AnalysisError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: Fewest subgroups (X-bar, p, u) and individual values (I-MR, and EWMA / CUSUM estimating sigma) that give
#: limits. Montgomery recommends 20 to 25 subgroups for trial limits; fewer than these give limits too loose to
#: judge anything by.
MIN_SUBGROUPS = 5
MIN_INDIVIDUALS = 10


@dataclass(frozen=True)
class Chart:
    """One chart: ``values[i]`` is plotted at point ``offset + i`` (the moving range starts at point 1).
    ``center``, ``lcl``, ``ucl`` and ``sigma`` (the standard error of the statistic, for zones) are per point;
    ``nan`` where a limit does not exist (no lower limit of a CUSUM, no zones of an R chart)."""

    name: str
    values: Floats
    center: Floats
    lcl: Floats
    ucl: Floats
    sigma: Floats
    offset: int = 0


@dataclass(frozen=True)
class ChartSet:
    """A chart type's charts (the location or attribute chart first), the within-subgroup sigma estimate
    (``nan`` for p and u) and the subgroup size of each point."""

    kind: str
    charts: tuple[Chart, ...]
    sigma_within: float
    sizes: Ints


@dataclass(frozen=True)
class Subgroups:
    """Samples in consecutive subgroups: ``values`` flat, ``sizes[i]`` samples in subgroup i."""

    values: Floats
    sizes: Ints

    @property
    def starts(self) -> Ints:
        return np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)

    def means(self) -> Floats:
        return np.add.reduceat(self.values, self.starts) / self.sizes

    def ranges(self) -> Floats:
        st = self.starts
        return np.maximum.reduceat(self.values, st) - np.minimum.reduceat(self.values, st)

    def stds(self) -> Floats:
        """Sample standard deviation (n - 1) of each subgroup."""
        dev = self.values - np.repeat(self.means(), self.sizes)
        return np.sqrt(np.add.reduceat(dev * dev, self.starts) / (self.sizes - 1))


def every(values: npt.ArrayLike, n: int) -> Subgroups:
    """Consecutive subgroups of ``n`` samples; an incomplete last subgroup is left out."""
    v = np.asarray(values, dtype=np.float64)
    k.check_n(n)
    m = v.size // n
    return Subgroups(v[: m * n], np.full(m, n, dtype=np.int64))


def by_key(values: npt.ArrayLike, keys: npt.ArrayLike, min_size: int = 2) -> Subgroups:
    """Subgroups of consecutive samples with the same key (a time bucket number, a part counter); subgroups of
    fewer than ``min_size`` samples are left out (a range or a deviation needs two)."""
    v, kk = np.asarray(values, dtype=np.float64), np.asarray(keys)
    if v.size != kk.size:
        raise AnalysisError(f"{v.size} values but {kk.size} keys", "keys")
    if v.size == 0:
        return Subgroups(v, np.zeros(0, np.int64))
    starts = np.concatenate(([0], np.flatnonzero(kk[1:] != kk[:-1]) + 1))
    sizes = np.diff(np.append(starts, v.size)).astype(np.int64)
    keep = np.repeat(sizes >= min_size, sizes)
    return Subgroups(v[keep], sizes[sizes >= min_size])


# -- helpers --------------------------------------------------------------------------------------------------
def _full(value: float, size: int) -> Floats:
    return np.full(size, value, dtype=np.float64)


def _need(count: int, least: int, what: str) -> None:
    if count < least:
        raise AnalysisError(f"{count} {what}, at least {least} needed for control limits", what)


def _finite(v: Floats, what: str) -> Floats:
    if not np.all(np.isfinite(v)):
        raise AnalysisError(f"{what} contain NaN or infinite values", what)
    return v


def _varies(spread: float, what: str) -> None:
    if not spread > 0:
        raise AnalysisError(f"no variation: {what} is 0, so the limits would collapse onto the centre line",
                            "values")


# -- variables charts -----------------------------------------------------------------------------------------
def xbar_r(sg: Subgroups, min_subgroups: int = MIN_SUBGROUPS) -> ChartSet:
    """X-bar and R chart of equal subgroups of n = 2..25: limits X̿ ± A2 R̄, D3 R̄ .. D4 R̄; sigma^ = R̄ / d2."""
    _need(sg.sizes.size, min_subgroups, "subgroups")
    n = int(sg.sizes[0])
    if np.any(sg.sizes != n):
        raise AnalysisError("an R chart needs subgroups of equal size; use X-bar S for unequal ones", "chart")
    k.check_n(n)
    _finite(sg.values, "values")
    xbar, r = sg.means(), sg.ranges()
    xbb, rbar = float(xbar.mean()), float(r.mean())
    _varies(rbar, "the mean range R̄")
    m, sigma = xbar.size, rbar / float(k.d2(n))
    a2 = float(k.a2(n))
    x_chart = Chart("xbar", xbar, _full(xbb, m), _full(xbb - a2 * rbar, m), _full(xbb + a2 * rbar, m),
                    _full(sigma / math.sqrt(n), m))
    r_chart = Chart("r", r, _full(rbar, m), _full(float(k.d3_factor(n)) * rbar, m),
                    _full(float(k.d4_factor(n)) * rbar, m), _full(float(k.d3(n)) * sigma, m))
    return ChartSet("xbar_r", (x_chart, r_chart), sigma, sg.sizes)


def xbar_s(sg: Subgroups, min_subgroups: int = MIN_SUBGROUPS) -> ChartSet:
    """X-bar and S chart, subgroups of 2..25, equal or not (Montgomery 6.3): X̿ weighted by size, S̄ the mean
    of the s_i (equal sizes) or pooled sqrt(Σ(n_i-1)s_i² / Σ(n_i-1)); limits X̿ ± A3(n_i) S̄, B3(n_i) S̄ ..
    B4(n_i) S̄ per point; sigma^ = S̄ / c4(n) (n the mean size, rounded)."""
    _need(sg.sizes.size, min_subgroups, "subgroups")
    n = sg.sizes
    k.check_n(n)
    _finite(sg.values, "values")
    xbar, s = sg.means(), sg.stds()
    xbb = float(np.sum(n * xbar) / np.sum(n))
    equal = bool(np.all(n == n[0]))
    sbar = float(s.mean()) if equal else float(np.sqrt(np.sum((n - 1) * s * s) / np.sum(n - 1)))
    _varies(sbar, "the mean standard deviation S̄")
    c4 = k.c4(n)
    a3, m = k.a3(n), n.size
    x_chart = Chart("xbar", xbar, _full(xbb, m), xbb - a3 * sbar, xbb + a3 * sbar, sbar / (c4 * np.sqrt(n)))
    s_chart = Chart("s", s, _full(sbar, m), k.b3(n) * sbar, k.b4(n) * sbar, sbar * np.sqrt(1 - c4 * c4) / c4)
    sigma = sbar / float(k.c4(round(float(n.mean()))))
    return ChartSet("xbar_s", (x_chart, s_chart), sigma, n)


def moving_range_sigma(x: Floats) -> float:
    """sigma^ = MR̄ / d2(2) = MR̄ / 1.128 from the moving ranges of two."""
    return float(np.abs(np.diff(x)).mean()) / float(k.d2(2))


def imr(values: npt.ArrayLike, min_points: int = MIN_INDIVIDUALS) -> ChartSet:
    """Individuals and moving range: limits X̄ ± E2 MR̄ (E2 = 3 / d2(2) = 2.660), MR chart 0 .. D4(2) MR̄."""
    x = _finite(np.asarray(values, dtype=np.float64), "values")
    _need(x.size, min_points, "points")
    mr = np.abs(np.diff(x))
    mrbar, xb = float(mr.mean()), float(x.mean())
    _varies(mrbar, "the mean moving range MR̄")
    sigma, m = mrbar / float(k.d2(2)), x.size
    i_chart = Chart("i", x, _full(xb, m), _full(xb - float(k.e2(2)) * mrbar, m),
                    _full(xb + float(k.e2(2)) * mrbar, m), _full(sigma, m))
    mr_chart = Chart("mr", mr, _full(mrbar, m - 1), _full(0.0, m - 1), _full(float(k.d4_factor(2)) * mrbar, m - 1),
                     _full(float(k.d3(2)) * sigma, m - 1), offset=1)
    return ChartSet("imr", (i_chart, mr_chart), sigma, np.ones(m, np.int64))


# -- attributes charts ----------------------------------------------------------------------------------------
def _counts(counts: npt.ArrayLike, sizes: npt.ArrayLike, min_subgroups: int) -> tuple[Floats, Floats]:
    c, n = np.asarray(counts, dtype=np.float64), np.asarray(sizes, dtype=np.float64)
    if c.shape != n.shape:
        raise AnalysisError(f"{c.size} counts but {n.size} sizes", "sizes")
    _need(c.size, min_subgroups, "subgroups")
    _finite(c, "counts")
    _finite(n, "sizes")
    if np.any(n <= 0) or np.any(c < 0):
        raise AnalysisError("counts must be >= 0 and sizes > 0", "sizes")
    return c, n


def p_chart(defectives: npt.ArrayLike, sizes: npt.ArrayLike, min_subgroups: int = MIN_SUBGROUPS) -> ChartSet:
    """Fraction nonconforming: p̄ = Σd / Σn, limits p̄ ± 3 sqrt(p̄(1-p̄)/n_i) clipped to [0, 1]."""
    d, n = _counts(defectives, sizes, min_subgroups)
    if np.any(d > n):
        raise AnalysisError("more defectives than inspected in a subgroup", "counts")
    pbar = float(d.sum() / n.sum())
    _varies(pbar * (1 - pbar), "p̄(1 - p̄)")
    se = np.sqrt(pbar * (1 - pbar) / n)
    chart = Chart("p", d / n, _full(pbar, n.size), np.maximum(0.0, pbar - 3 * se), np.minimum(1.0, pbar + 3 * se),
                  se)
    return ChartSet("p", (chart,), math.nan, n.astype(np.int64))


def u_chart(defects: npt.ArrayLike, units: npt.ArrayLike, min_subgroups: int = MIN_SUBGROUPS) -> ChartSet:
    """Nonconformities per unit: ū = Σc / Σn, limits ū ± 3 sqrt(ū / n_i), the lower one clipped at 0."""
    c, n = _counts(defects, units, min_subgroups)
    ubar = float(c.sum() / n.sum())
    _varies(ubar, "ū")
    se = np.sqrt(ubar / n)
    chart = Chart("u", c / n, _full(ubar, n.size), np.maximum(0.0, ubar - 3 * se), ubar + 3 * se, se)
    return ChartSet("u", (chart,), math.nan, n.astype(np.int64))


# -- time-weighted charts -------------------------------------------------------------------------------------
def _target_sigma(x: Floats, target: float | None, sigma: float | None, min_points: int) -> tuple[float, float]:
    if sigma is None or target is None:
        _need(x.size, min_points, "points")
    mu = float(x.mean()) if target is None else float(target)
    s = moving_range_sigma(x) if sigma is None else float(sigma)
    _varies(s, "sigma")
    return mu, s


def ewma_values(x: Floats, lam: float, start: float) -> Floats:
    """z_i = λ x_i + (1 - λ) z_(i-1), z_(-1) = ``start``; in blocks of closed-form cumulative sums."""
    a = 1.0 - lam
    if a == 0.0:
        return x.copy()
    block = max(1, int(15.0 / -math.log10(a)))
    out, state = np.empty_like(x), start
    for b0 in range(0, x.size, block):
        seg = x[b0:b0 + block]
        j = np.arange(seg.size, dtype=np.float64)
        grow = a ** -j
        z = a ** j * (a * state + lam * np.cumsum(seg * grow))
        out[b0:b0 + seg.size] = z
        state = float(z[-1])
    return out


def ewma(values: npt.ArrayLike, lam: float = 0.2, L: float = 3.0, target: float | None = None,
         sigma: float | None = None, min_points: int = MIN_INDIVIDUALS) -> ChartSet:
    """EWMA of individual values (Montgomery 9.2): limits μ0 ± L sigma sqrt(λ/(2-λ) (1 - (1-λ)^(2i))), i = 1..;
    μ0 the ``target`` (default the mean), sigma given or MR̄ / 1.128."""
    if not 0 < lam <= 1 or not L > 0:
        raise AnalysisError(f"EWMA needs 0 < lambda <= 1 and L > 0, got lambda={lam}, L={L}", "lambda")
    x = _finite(np.asarray(values, dtype=np.float64), "values")
    mu, s = _target_sigma(x, target, sigma, min_points)
    i = np.arange(1, x.size + 1, dtype=np.float64)
    se = s * np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * i)))
    z = ewma_values(x, lam, mu)
    chart = Chart("ewma", z, _full(mu, x.size), mu - L * se, mu + L * se, se)
    return ChartSet("ewma", (chart,), s, np.ones(x.size, np.int64))


def cusum_values(y: Floats) -> Floats:
    """C_i = max(0, C_(i-1) + y_i), C_0 = 0, as S_i - min(0, min_(j<=i) S_j) with S the cumulative sum."""
    s = np.cumsum(y)
    return s - np.minimum(0.0, np.minimum.accumulate(s))


def cusum(values: npt.ArrayLike, k_sigma: float = 0.5, h_sigma: float = 5.0, target: float | None = None,
          sigma: float | None = None, min_points: int = MIN_INDIVIDUALS) -> ChartSet:
    """Tabular CUSUM (Montgomery 9.1): C+_i = max(0, x_i - (μ0 + K) + C+_(i-1)), C-_i = max(0, (μ0 - K) - x_i
    + C-_(i-1)), K = k sigma, decision interval H = h sigma; both plotted as positive values against H."""
    if not k_sigma >= 0 or not h_sigma > 0:
        raise AnalysisError(f"CUSUM needs k >= 0 and h > 0, got k={k_sigma}, h={h_sigma}", "k")
    x = _finite(np.asarray(values, dtype=np.float64), "values")
    mu, s = _target_sigma(x, target, sigma, min_points)
    kk, h, m = k_sigma * s, h_sigma * s, x.size
    nan = _full(math.nan, m)
    hi = Chart("cusum_hi", cusum_values(x - (mu + kk)), _full(0.0, m), nan, _full(h, m), nan)
    lo = Chart("cusum_lo", cusum_values((mu - kk) - x), _full(0.0, m), nan, _full(h, m), nan)
    return ChartSet("cusum", (hi, lo), s, np.ones(m, np.int64))
