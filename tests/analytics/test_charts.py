"""Control charts on tiny hand-computed examples (limits from Montgomery's printed constants), EWMA and CUSUM
against plain loops, sigma estimates on generated data of known sigma, and the errors of unusable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plantlink.analytics import spc
from plantlink.errors import AnalysisError

TABLE_TOL = 2.5e-3  # hand computations use the 3-decimal printed factors


def test_xbar_r_by_hand() -> None:
    """Five subgroups of 3 with means 2, 4, 3, 5, 6 and each range 2: X = 4, R = 2; A2(3) = 1.023,
    D4(3) = 2.574, D3(3) = 0, d2(3) = 1.693."""
    sg = spc.every([1, 2, 3, 3, 4, 5, 2, 3, 4, 4, 5, 6, 5, 6, 7, 99], 3)  # the last, incomplete: left out
    cs = spc.xbar_r(sg)
    x, r = cs.charts
    assert x.values.tolist() == [2, 4, 3, 5, 6] and r.values.tolist() == [2] * 5
    assert x.center[0] == 4 and r.center[0] == 2
    assert x.ucl[0] == pytest.approx(4 + 1.023 * 2, abs=TABLE_TOL)
    assert x.lcl[0] == pytest.approx(4 - 1.023 * 2, abs=TABLE_TOL)
    assert r.ucl[0] == pytest.approx(2.574 * 2, abs=TABLE_TOL) and r.lcl[0] == 0
    assert cs.sigma_within == pytest.approx(2 / 1.693, abs=1e-3)
    assert x.sigma[0] == pytest.approx(2 / 1.693 / math.sqrt(3), abs=1e-3)  # the zone width: (UCL - X) / 3


def test_xbar_s_equal_and_unequal_sizes() -> None:
    sg = spc.every([1, 2, 3, 3, 4, 5, 2, 3, 4, 4, 5, 6, 5, 6, 7], 3)
    x, s = spc.xbar_s(sg).charts
    assert s.values == pytest.approx([1.0] * 5)  # sd of three consecutive integers
    assert x.ucl[0] == pytest.approx(4 + 1.954 * 1.0, abs=TABLE_TOL)  # A3(3) = 1.954
    assert s.ucl[0] == pytest.approx(2.568, abs=TABLE_TOL) and s.lcl[0] == 0  # B4(3) = 2.568
    # unequal: sizes 2, 4, 3, 5, 2; Montgomery 6.3.2 pooled S and weighted X
    groups = [[1.0, 3.0], [2.0, 4.0, 6.0, 8.0], [5.0, 5.5, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0], [7.0, 9.0]]
    sg2 = spc.Subgroups(np.concatenate(groups), np.array([len(g) for g in groups]))
    cs = spc.xbar_s(sg2)
    x, s = cs.charts
    sds = [float(np.std(g, ddof=1)) for g in groups]
    ns = [len(g) for g in groups]
    sbar = math.sqrt(sum((n - 1) * v * v for n, v in zip(ns, sds, strict=True)) / sum(n - 1 for n in ns))
    xbb = sum(sum(g) for g in groups) / sum(ns)
    a3 = {2: 2.659, 3: 1.954, 4: 1.628, 5: 1.427}
    b4 = {2: 3.267, 3: 2.568, 4: 2.266, 5: 2.089}
    assert x.center[0] == pytest.approx(xbb)
    assert s.center[0] == pytest.approx(sbar)
    for i, n in enumerate(ns):
        assert x.ucl[i] == pytest.approx(xbb + a3[n] * sbar, abs=TABLE_TOL * 4)
        assert s.ucl[i] == pytest.approx(b4[n] * sbar, abs=TABLE_TOL * 4)
        assert s.values[i] == pytest.approx(sds[i])


def test_imr_by_hand() -> None:
    x = [10, 12, 11, 13, 12, 14, 13, 15, 14, 16]  # moving ranges 2,1,2,1,... mean 14/9, mean 13
    i_chart, mr = spc.imr(x).charts
    mrbar = 14 / 9
    assert i_chart.center[0] == 13 and mr.center[0] == pytest.approx(mrbar)
    assert i_chart.ucl[0] == pytest.approx(13 + 2.660 * mrbar, abs=TABLE_TOL)
    assert i_chart.lcl[0] == pytest.approx(13 - 2.660 * mrbar, abs=TABLE_TOL)
    assert mr.ucl[0] == pytest.approx(3.267 * mrbar, abs=TABLE_TOL) and mr.offset == 1 and mr.values.size == 9


def test_p_chart_with_variable_sizes() -> None:
    cs = spc.p_chart([2, 3, 1, 4, 0], [100, 100, 50, 200, 50])  # p = 10 / 500 = 0.02
    (p,) = cs.charts
    assert p.center[0] == pytest.approx(0.02)
    assert p.values.tolist() == pytest.approx([0.02, 0.03, 0.02, 0.02, 0.0])
    assert p.ucl.tolist() == pytest.approx([0.062, 0.062, 0.02 + 3 * math.sqrt(0.0196 / 50),
                                            0.02 + 3 * math.sqrt(0.0196 / 200), 0.02 + 3 * 0.0196 ** 0.5 / 50 ** 0.5])
    assert p.lcl.tolist() == [0.0] * 5  # 0.02 - 3 sqrt(0.0196 / n) < 0 for every n here


def test_u_chart_with_variable_units() -> None:
    (u,) = spc.u_chart([4, 6, 2, 8, 5], [2, 2, 1, 4, 1]).charts  # u = 25 / 10 = 2.5
    assert u.center[0] == 2.5
    assert u.ucl.tolist() == pytest.approx([2.5 + 3 * math.sqrt(2.5 / n) for n in (2, 2, 1, 4, 1)])
    assert u.lcl[3] == pytest.approx(2.5 - 3 * math.sqrt(2.5 / 4))  # 0.128: not clipped
    assert u.lcl[0] == 0.0  # 2.5 - 3.354: clipped


def _ewma_loop(x: np.ndarray, lam: float, z0: float) -> list[float]:
    out, z = [], z0
    for v in x:
        z = lam * v + (1 - lam) * z
        out.append(z)
    return out


@pytest.mark.parametrize("lam", [0.05, 0.2, 0.9, 1.0])
def test_ewma_equals_the_recursion(lam: float) -> None:
    x = np.random.default_rng(1).normal(50, 2, 5000)
    (c,) = spc.ewma(x, lam=lam, L=2.7, target=50.0, sigma=2.0).charts
    assert c.values == pytest.approx(_ewma_loop(x, lam, 50.0), rel=1e-9)
    assert c.ucl[0] - 50 == pytest.approx(2.7 * 2.0 * lam)  # i = 1: sigma_z = lambda sigma
    assert c.ucl[-1] - 50 == pytest.approx(2.7 * 2.0 * math.sqrt(lam / (2 - lam)))  # steady state


def _cusum_loop(x: np.ndarray, mu: float, kk: float) -> tuple[list[float], list[float]]:
    hi, lo, a, b = [], [], 0.0, 0.0
    for v in x:
        a, b = max(0.0, v - (mu + kk) + a), max(0.0, (mu - kk) - v + b)
        hi.append(a)
        lo.append(b)
    return hi, lo


def test_cusum_by_hand_and_against_the_recursion() -> None:
    hi, lo = spc.cusum([1, 2, 0, -1, 3], k_sigma=0.5, h_sigma=4, target=0.0, sigma=1.0).charts
    assert hi.values.tolist() == [0.5, 2.0, 1.5, 0.0, 2.5]
    assert lo.values.tolist() == [0.0, 0.0, 0.0, 0.5, 0.0]
    assert hi.ucl[0] == 4.0
    x = np.random.default_rng(2).normal(10, 1, 20000)
    x[10000:] += 1.0
    hi, lo = spc.cusum(x, 0.5, 5.0, target=10.0, sigma=1.0).charts
    want_hi, want_lo = _cusum_loop(x, 10.0, 0.5)
    assert hi.values == pytest.approx(want_hi, abs=1e-7) and lo.values == pytest.approx(want_lo, abs=1e-7)


@pytest.mark.parametrize("n", [2, 5, 10])
def test_sigma_estimates_on_generated_data(n: int) -> None:
    """sigma = 2: R/d2, S/c4 and MR/1.128 are unbiased; tolerance 5 standard errors (roughly sigma /
    sqrt(2 m (n - 1)) per estimate, conservatively doubled for R and MR)."""
    m, sigma = 4000, 2.0
    x = np.random.default_rng(n).normal(100, sigma, m * n)
    sg = spc.every(x, n)
    tol = 5 * 2 * sigma / math.sqrt(2 * m * (n - 1))
    assert spc.xbar_r(sg).sigma_within == pytest.approx(sigma, abs=tol)
    assert spc.xbar_s(sg).sigma_within == pytest.approx(sigma, abs=tol)
    assert spc.imr(x).sigma_within == pytest.approx(sigma, abs=5 * 2 * sigma / math.sqrt(m * n))


def test_by_key_groups_consecutive_equal_keys() -> None:
    sg = spc.by_key([1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 1, 2, 2, 3])
    assert sg.sizes.tolist() == [3, 2] and sg.values.tolist() == [1, 2, 3, 5, 6]


@pytest.mark.parametrize(("call", "match"), [
    (lambda: spc.xbar_r(spc.every(range(12), 3)), "4 subgroups, at least 5"),
    (lambda: spc.xbar_r(spc.every([5.0] * 30, 3)), "no variation"),
    (lambda: spc.xbar_r(spc.Subgroups(np.arange(11.0), np.array([2, 2, 2, 2, 3]))), "equal size"),
    (lambda: spc.xbar_s(spc.Subgroups(np.arange(30.0), np.array([26, 1, 1, 1, 1]))), "2 to 25"),
    (lambda: spc.every(range(10), 1), "2 to 25"),
    (lambda: spc.imr([1, 2, 3]), "3 points, at least 10"),
    (lambda: spc.imr([1.0] * 9 + [math.nan]), "NaN"),
    (lambda: spc.p_chart([0, 0, 0, 0, 0], [10] * 5), "no variation"),
    (lambda: spc.p_chart([11, 0, 0, 0, 1], [10] * 5), "more defectives"),
    (lambda: spc.u_chart([1, 2, 3, 4, 5], [1, 1, 0, 1, 1]), "sizes > 0"),
    (lambda: spc.ewma(range(20), lam=0), "lambda"),
    (lambda: spc.cusum(range(20), h_sigma=0), "h > 0"),
    (lambda: spc.cusum([3.0] * 20), "no variation"),
])
def test_unusable_data_is_a_clear_error(call: object, match: str) -> None:
    with pytest.raises(AnalysisError, match=match) as info:
        call()  # type: ignore[operator]
    assert info.value.status == 400 and isinstance(info.value, ValueError)


def test_the_error_names_tag_and_period() -> None:
    err = AnalysisError("3 points, at least 10 needed", "points").at("s/a/l/m/temp", (0, 3_600_000_000))
    assert str(err) == ("tag s/a/l/m/temp over [1970-01-01T00:00:00Z, 1970-01-01T01:00:00Z): "
                        "3 points, at least 10 needed")
