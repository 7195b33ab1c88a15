"""PCA T²/Q and isolation-forest detectors: limits against tables and theory, T² against a second
implementation, false-alarm rates against binomial bounds, faults injected at a known start."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from plantlink.analytics.anomaly import (
    BaselineError,
    MovingAverageRule,
    PCADetector,
    WindowRule,
    jackson_mudholkar_limit,
    t2_limit,
)
from plantlink.analytics.iforest import IsolationForestDetector

P = 6


def correlated(rng: np.random.Generator, n: int, p: int = P) -> np.ndarray:
    """Correlated Gaussian rows with a fixed covariance (the same for every call)."""
    a = np.random.default_rng(12345).normal(size=(p, p))
    chol = np.linalg.cholesky(a @ a.T + 0.1 * np.eye(p))
    return rng.normal(size=(n, p)) @ chol.T + 50.0


def test_t2_limit_matches_the_f_table() -> None:
    # F(0.95; 2, 48) = 3.1907 (tables); limit = k (n-1)(n+1) / (n (n-k)) F = 2*49*51/(50*48) * 3.1907
    assert t2_limit(2, 50, 0.05) == pytest.approx(2 * 49 * 51 / (50 * 48) * 3.1907, rel=1e-4)


def test_jackson_mudholkar_with_equal_eigenvalues_is_wilson_hilferty_chi2() -> None:
    # m equal residual eigenvalues lam: Q = lam * chi2(m); J-M reduces to the Wilson-Hilferty cube
    # root approximation, within 1 % of the exact chi-square quantile for m = 5.
    lam, m, alpha = 0.3, 5, 0.01
    exact = lam * stats.chi2.ppf(1 - alpha, m)
    assert jackson_mudholkar_limit(np.full(m, lam), alpha) == pytest.approx(exact, rel=0.01)
    c = stats.norm.ppf(1 - alpha)
    wilson_hilferty = m * lam * (1 - 2 / (9 * m) + c * math.sqrt(2 / (9 * m))) ** 3
    assert jackson_mudholkar_limit(np.full(m, lam), alpha) == pytest.approx(wilson_hilferty, rel=1e-12)


def test_t2_and_q_equal_a_second_implementation() -> None:
    """Direct Mahalanobis distance on the retained components, from an SVD (not the module's eigh)."""
    rng = np.random.default_rng(7)
    base, test = correlated(rng, 500), correlated(rng, 50)
    det = PCADetector(variance=0.9).learn_many(base)
    mean, std = base.mean(axis=0), base.std(axis=0, ddof=1)
    zb, zt = (base - mean) / std, (test - mean) / std
    _, _, vt = np.linalg.svd(zb - zb.mean(axis=0), full_matrices=False)
    v = vt[: det.k].T
    scores_b, scores_t = zb @ v, zt @ v
    inv = np.linalg.inv(np.cov(scores_b, rowvar=False))
    t2_direct = np.einsum("ij,jk,ik->i", scores_t, inv, scores_t)
    q_direct = np.sum((zt - scores_t @ v.T) ** 2, axis=1)
    t2, q = det.statistics(test)
    np.testing.assert_allclose(t2, t2_direct, rtol=1e-9)
    np.testing.assert_allclose(q, q_direct, rtol=1e-9)
    assert det.k < P
    assert np.sum(det.eigenvalues[: det.k]) / np.sum(det.eigenvalues) >= 0.9 > np.sum(det.eigenvalues[: det.k - 1]) / P


def test_false_alarm_rates_are_nominal() -> None:
    """On fresh in-control data each limit is crossed close to alpha = 1 % of the time.

    Binomial sd over 20,000 points: sqrt(0.01 * 0.99 / 20000) = 0.0007; the estimated baseline (2,000
    rows) adds its own spread, so the tolerance is 0.003 (about 4 binomial sd)."""
    rng = np.random.default_rng(2026)
    det = PCADetector(variance=0.9, alpha=0.01).learn_many(correlated(rng, 2000))
    t2, q = det.statistics(correlated(rng, 20000))
    assert abs(np.mean(t2 > det.t2_limit) - 0.01) < 0.003
    assert abs(np.mean(q > det.q_limit) - 0.01) < 0.003
    combined = np.mean(det.predict_many(correlated(rng, 20000)))
    assert 0.01 <= combined <= 0.02 + 0.003  # either limit: between alpha and 2 alpha


def test_mean_shift_is_detected_within_five_samples_and_not_before() -> None:
    rng = np.random.default_rng(11)
    base = correlated(rng, 1000)
    det = PCADetector(variance=0.9, alpha=0.01).learn_many(base)
    stream = correlated(rng, 1000)
    start = 600
    stream[start:, 2] += 5 * base[:, 2].std()
    # 3 of the last 5 above the limit: a false alarm needs >= 3 of 5 at p <= 0.02 (about 1e-4 a point)
    alarms = np.flatnonzero(WindowRule(det, window=5, min_hits=3).predict_many(stream))
    assert alarms.size and start <= alarms[0] < start + 5


def test_broken_correlation_is_caught_by_q() -> None:
    """Four tags driven by one common factor; from ``start`` on, one tag moves against the others while
    every tag stays within its normal range: Q sees it, T² mostly does not."""
    rng = np.random.default_rng(5)

    def rows(n: int, broken: bool) -> np.ndarray:
        f = rng.normal(size=(n, 1))
        sign = np.array([1.0, -1.0 if broken else 1.0, 1.0, 1.0])
        return f * sign + 0.2 * rng.normal(size=(n, 4))

    det = PCADetector(variance=0.9, alpha=0.01).learn_many(rows(1000, False))
    assert det.k == 1
    start = 400
    stream = np.vstack([rows(start, False), rows(200, True)])
    rule = WindowRule(det, window=5, min_hits=3)
    alarms = np.flatnonzero([rule.update_one(row) for row in stream])
    assert alarms.size and start <= alarms[0] < start + 10
    t2, q = det.statistics(stream[start:])
    assert np.mean(q > det.q_limit) > 0.5 > np.mean(t2 > det.t2_limit)
    assert np.all(np.abs(stream[start:]) < 5)  # no tag leaves its own range


def test_streaming_arrow_and_numpy_scores_agree() -> None:
    rng = np.random.default_rng(3)
    base, test = correlated(rng, 300), correlated(rng, 20)
    names = [f"t{i}" for i in range(P)]
    # a text column and the tags in reverse order: columns= picks and orders them by name
    table = pa.table({"state": ["run"] * 300} | {n: base[:, i] for i, n in reversed(list(enumerate(names)))})
    from_table = PCADetector().learn_many(table, columns=names)
    from_array = PCADetector().learn_many(base)
    batch = pa.table({n: test[:, i] for i, n in enumerate(names)})
    np.testing.assert_allclose(from_table.score_many(batch), from_array.score_many(test))
    one = [from_array.score_one(row) for row in test]
    as_dict = [from_table.score_one(dict(zip(names, row, strict=True))) for row in test]
    np.testing.assert_allclose(one, from_array.score_many(test))
    np.testing.assert_allclose(as_dict, one)
    assert from_array.is_anomaly(2.0) and not from_array.is_anomaly(0.5)


def test_window_rule_streaming_equals_batch() -> None:
    rng = np.random.default_rng(4)
    det = PCADetector(alpha=0.2).learn_many(correlated(rng, 400))
    stream = correlated(rng, 300)
    one_by_one = WindowRule(det, 4, 2)
    flags = [one_by_one.update_one(r) for r in stream]
    batched = WindowRule(det, 4, 2)
    chunks = np.concatenate([batched.predict_many(stream[:123]), batched.predict_many(stream[123:])])
    np.testing.assert_array_equal(flags, chunks)
    assert 0 < np.sum(flags) < len(flags)


def test_moving_average_rule_streaming_batch_and_by_hand() -> None:
    rng = np.random.default_rng(6)
    det = PCADetector(alpha=0.05).learn_many(correlated(rng, 400))
    stream = correlated(rng, 200)
    stream[120:, 1] += 3 * stream[:, 1].std()
    scores = det.score_many(stream)
    by_hand = np.array([scores[max(0, i - 9) : i + 1].mean() for i in range(len(scores))])
    batched = MovingAverageRule(det, 10)
    got = np.concatenate([batched.smoothed_many(stream[:57]), batched.smoothed_many(stream[57:])])
    np.testing.assert_allclose(got, by_hand)
    one = MovingAverageRule(det, 10)
    np.testing.assert_array_equal([one.update_one(r) for r in stream], by_hand > 1.0)
    assert not (by_hand[:120] > 1).any() and (by_hand[125:] > 1).all()


def test_bad_baselines_are_refused_by_name() -> None:
    rng = np.random.default_rng(8)
    with pytest.raises(BaselineError, match=r"baseline: 20 rows for 6 tags; at least 30"):
        PCADetector().learn_many(correlated(rng, 20))
    const = correlated(rng, 100)
    const[:, 3] = 4.2
    with pytest.raises(BaselineError, match=r"'speed'.*constant"):
        PCADetector().learn_many(const, columns=["a", "b", "c", "speed", "e", "f"])
    nan = correlated(rng, 100)
    nan[[5, 9], 1] = np.nan
    with pytest.raises(BaselineError, match=r"column 'x1' has 2 NaN or infinite value\(s\) \(first at row 5\)"):
        PCADetector().learn_many(nan)
    det = PCADetector().learn_many(correlated(rng, 100))
    bad = correlated(rng, 3)
    bad[1, 4] = np.inf
    with pytest.raises(BaselineError, match=r"batch: column 'x4'"):
        det.score_many(bad)
    with pytest.raises(BaselineError, match=r"batch: 5 columns, the baseline has 6"):
        det.score_many(bad[:, :5])
    with pytest.raises(BaselineError, match=r"column 'x5' is missing"):
        det.score_many(pa.table({f"x{i}": bad[:, i] for i in range(5)}))
    with pytest.raises(BaselineError, match=r"tag\(s\) 'x2', 'x3', 'x4', 'x5' missing"):
        det.score_one({"x0": 1.0, "x1": 1.0})
    with pytest.raises(RuntimeError, match="learn_many"):
        PCADetector().score_one([1.0] * P)


def test_isolation_forest_threshold_and_detection() -> None:
    rng = np.random.default_rng(9)
    base = correlated(rng, 1000)
    det = IsolationForestDetector(quantile=0.99).learn_many(base)
    assert np.mean(det.predict_many(base)) == pytest.approx(0.01, abs=0.002)  # quantile of its own scores
    fresh = np.mean(det.predict_many(correlated(rng, 5000)))
    assert 0.005 < fresh < 0.05
    far = base.mean(axis=0) + 8 * base.std(axis=0)
    assert det.is_anomaly(det.score_one(far))
    stream = correlated(rng, 400)
    stream[200:] += 4 * base.std(axis=0)  # every tag up 4 sd (a 6 sd shift of one tag alone stayed under it here)
    alarms = np.flatnonzero(WindowRule(det, 5, 3).predict_many(stream))
    assert alarms.size and 200 <= alarms[0] < 205
