"""RUL estimator: known answers on a synthetic degradation, features against numpy, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from plantlink.analytics.rul import (
    RULError,
    RULEstimate,
    RULEstimator,
    all_window_features,
    lsq_slope,
    window_features,
)

SIGMA, RATE = 3.0, 1.0  # wear sensor noise and drift per cycle
WINDOW = 30


def unit(rng: np.random.Generator, life: int, shape: str = "linear") -> np.ndarray:
    """A run to failure at row ``life - 1``: the wear sensor reaches the failure threshold (0) there,
    plus a second sensor of pure noise (irrelevant to wear)."""
    rul = np.arange(life - 1, -1, -1, dtype=float)
    # exponential: the threshold 0 is reached from -100, fast at the end
    wear = -RATE * rul if shape == "linear" else -100.0 * (1 - np.exp(-rul / 60.0))
    return np.column_stack([wear + rng.normal(0, SIGMA, life), rng.normal(0, 1, life)])


def fleet(seed: int, n: int, shape: str = "linear") -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [unit(rng, int(rng.integers(150, 300)), shape) for _ in range(n)]


def truncated(units: list[np.ndarray], seed: int) -> list[tuple[np.ndarray, float]]:
    """Each test unit cut at a true RUL between 5 and 100 cycles (inside the cap: the truth is known)."""
    rng = np.random.default_rng(seed)
    out = []
    for u in units:
        rul = int(rng.integers(5, 101))
        out.append((u[: len(u) - rul], float(rul)))
    return out


@pytest.fixture(scope="module")
def linear_model() -> RULEstimator:
    return RULEstimator(["wear", "noise"], window=WINDOW).fit(fleet(1, 60))


def test_lsq_slope_and_features_match_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).cumsum(axis=0)
    w = x[-10:]
    for j in range(3):
        assert lsq_slope(w)[j] == pytest.approx(np.polyfit(np.arange(10), w[:, j], 1)[0])
    f = window_features(x, 10)
    assert f[:3] == pytest.approx(x[-1])
    assert f[3:6] == pytest.approx(w.mean(axis=0))
    assert f[-1] == 50
    every = all_window_features(x, 10)
    assert every.shape == (41, 10)
    for i in (0, 17, 40):  # the vectorized features equal the one-window ones on the history so far
        assert every[i] == pytest.approx(window_features(x[: i + 10], 10))


def test_linear_degradation_error_within_noise(linear_model: RULEstimator) -> None:
    """Reading the wear sensor once gives the RUL with an error of SIGMA / RATE (3 cycles); extrapolating a
    least-squares line over the window to its end, 2 SIGMA / RATE / sqrt(WINDOW) (1.1 cycles; the window's
    mean with the drift known, SIGMA / RATE / sqrt(WINDOW), 0.55). The model must do as well as the line
    and be unbiased within a cycle."""
    cases = truncated(fleet(2, 80), seed=3)
    est = [linear_model.predict(h) for h, _ in cases]
    err = np.array([e.rul - t for e, (_, t) in zip(est, cases, strict=True)])
    assert np.sqrt(np.mean(err**2)) < 2 * SIGMA / RATE / np.sqrt(WINDOW)
    assert abs(err.mean()) < 1.0
    inside = np.mean([e.lower <= t <= e.upper for e, (_, t) in zip(est, cases, strict=True)])
    assert 0.75 <= inside <= 1.0  # nominal 90 % band (5 % and 95 % quantiles)
    assert all(e.lower <= e.rul <= e.upper for e in est)


def test_exponential_degradation_error_within_noise() -> None:
    """Wear accelerating towards failure: -100 (1 - exp(-RUL/60)); its slope near RUL r is
    (100/60) exp(-r/60), at least 0.32 per cycle for r <= 100, so the least-squares line's error is at most
    2 SIGMA / 0.32 / sqrt(WINDOW) = 3.4 cycles (one reading's, 9.5); the model must do as well in RMSE."""
    model = RULEstimator(["wear", "noise"], window=WINDOW).fit(fleet(4, 60, "exponential"))
    cases = truncated(fleet(5, 80, "exponential"), seed=6)
    err = np.array([model.predict(h).rul - t for h, t in cases])
    assert np.sqrt(np.mean(err**2)) < 2 * SIGMA / ((100 / 60) * np.exp(-100 / 60)) / np.sqrt(WINDOW)


def test_healthy_machine_is_censored_at_cap(linear_model: RULEstimator) -> None:
    u = fleet(7, 1)[0]
    est = linear_model.predict(u[:WINDOW + 5])  # 100+ cycles from failure: no sign of wear yet
    assert est.rul > 110
    assert est.upper <= linear_model.cap


def test_mapping_history_and_failure_dates(linear_model: RULEstimator) -> None:
    h, _ = truncated(fleet(8, 1), seed=9)[0]
    as_map = linear_model.predict({"noise": h[:, 1], "wear": h[:, 0]})
    assert as_map == linear_model.predict(h)
    e = RULEstimate(rul=10.0, lower=8.0, upper=14.5, cap=125.0)
    last = datetime(2026, 1, 1, tzinfo=UTC)
    assert e.failure_at(last, timedelta(hours=2)) == (
        datetime(2026, 1, 1, 16, tzinfo=UTC), datetime(2026, 1, 1, 20, tzinfo=UTC),
        datetime(2026, 1, 2, 5, tzinfo=UTC))
    with pytest.raises(RULError, match="cycle period must be positive"):
        e.failure_at(last, timedelta(0))


def test_bad_input_names_what(linear_model: RULEstimator) -> None:
    h = fleet(10, 1)[0][:100]
    with pytest.raises(RULError, match=r"too short: 29 cycle\(s\).*at least 30"):
        linear_model.predict(h[:29])
    with pytest.raises(RULError, match=r"missing sensor\(s\) \['noise'\]"):
        linear_model.predict({"wear": h[:, 0]})
    with pytest.raises(RULError, match=r"expected a \(cycles x 2\) array.*got shape \(100, 1\)"):
        linear_model.predict(h[:, :1])
    bad = h.copy()
    bad[41, 1] = np.nan
    with pytest.raises(RULError, match=r"sensor 'noise' is not finite \(nan\) at cycle 42"):
        linear_model.predict(bad)
    with pytest.raises(RULError, match=r"unit 1: history too short"):
        RULEstimator(["wear", "noise"]).fit([h, h[:5]])
    with pytest.raises(RULError, match="different lengths"):
        linear_model.predict({"wear": h[:, 0], "noise": h[:50, 1]})
    with pytest.raises(RULError, match="not fitted"):
        RULEstimator(["wear"]).predict(h[:, :1])
    with pytest.raises(RULError, match="window must be at least 2"):
        RULEstimator(["wear"], window=1)
