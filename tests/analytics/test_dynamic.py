"""Dynamic PCA (``lags``) and the trailing median of T² and Q (``smooth``): known answers on hand-made series,
a second implementation (the extended matrix built by hand, a plain PCADetector on it, a loop median), and
streaming in random batch splits equal to scoring the whole series at once, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from plantlink.analytics import dynamic
from plantlink.analytics.anomaly import PCADetector
from plantlink.analytics.dynamic import lagged, lagged_names, trailing_median
from plantlink.analytics.iforest import IsolationForestDetector
from plantlink.model import analytics as model_analytics


def series(n: int = 700, p: int = 4, seed: int = 3) -> np.ndarray:
    """Correlated tags with some memory (an AR(1) component), so lags matter."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
    ar = np.zeros_like(e)
    for i in range(1, n):
        ar[i] = 0.8 * ar[i - 1] + e[i]
    return ar + 0.3 * e


def test_lagged_known_answer() -> None:
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    assert np.array_equal(lagged(x, 0), x)
    assert np.array_equal(lagged(x, 1), [[2, 20, 1, 10], [3, 30, 2, 20], [4, 40, 3, 30]])
    assert np.array_equal(lagged(x, 2), [[3, 30, 2, 20, 1, 10], [4, 40, 3, 30, 2, 20]])
    assert lagged(x, 4).shape == (0, 10)
    assert lagged_names(["a", "b"], 2) == ("a", "b", "a[t-1]", "b[t-1]", "a[t-2]", "b[t-2]")


def test_trailing_median_known_answer() -> None:
    nan = math.nan
    got = trailing_median(np.array([nan, nan]), np.array([5.0, 1.0, 3.0, 2.0, 8.0]), 3)
    assert np.array_equal(got, [nan, nan, 3.0, 2.0, 3.0], equal_nan=True)
    got = trailing_median(np.array([4.0, 0.0]), np.array([5.0, 1.0]), 3)
    assert np.array_equal(got, [4.0, 1.0])
    assert np.array_equal(trailing_median(np.zeros(0), np.array([2.0, 1.0]), 1), [2.0, 1.0])


def loop_median(a: np.ndarray, w: int) -> np.ndarray:
    out = np.full(a.size, np.nan)
    for i in range(w - 1, a.size):
        win = sorted(a[i - w + 1 : i + 1])
        out[i] = win[w // 2] if w % 2 else (win[w // 2 - 1] + win[w // 2]) / 2
    return out


@pytest.mark.parametrize(("lags", "smooth"), [(1, 5), (2, 1), (0, 4), (3, 3)])
def test_against_a_second_implementation(lags: int, smooth: int) -> None:
    x = series()
    det = PCADetector(variance=0.85, alpha=0.001, lags=lags, smooth=smooth).learn_many(x[:400])
    # by hand: the extended rows, a static detector learnt on the extended baseline, a loop median
    ext = np.hstack([x[lags - j : len(x) - j] for j in range(lags + 1)])
    ref = PCADetector(variance=0.85, alpha=0.001).learn_many(ext[: 400 - lags])
    assert (det.k, det.t2_limit, det.q_limit) == (ref.k, ref.t2_limit, ref.q_limit)
    t2, q = ref.statistics(ext)
    m2, mq = loop_median(t2, smooth), loop_median(q, smooth)
    want = np.concatenate([np.full(lags, np.nan), np.maximum(m2 / ref.t2_limit, mq / ref.q_limit)])
    got = det.score_many(x)
    assert np.isnan(got[: lags + smooth - 1]).all() and np.isfinite(got[lags + smooth - 1 :]).all()
    np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)
    alarms = (np.concatenate([np.full(lags, False), (m2 > ref.t2_limit) | (mq > ref.q_limit)]))
    assert np.array_equal(det.predict_many(x), alarms)


@pytest.mark.parametrize(("lags", "smooth"), [(0, 1), (1, 5), (2, 1), (0, 4), (3, 7)])
def test_streaming_equals_the_whole_series(lags: int, smooth: int) -> None:
    x = series()
    det = PCADetector(variance=0.85, alpha=0.001, lags=lags, smooth=smooth).learn_many(x[:400])
    whole = det.score_many(x)
    rng = np.random.default_rng(lags * 10 + smooth)
    for _ in range(60):
        cuts = np.sort(rng.choice(np.arange(1, len(x)), size=int(rng.integers(1, 200)), replace=False))
        stream = det.stream()
        got = np.concatenate([stream.score_many(part) for part in np.split(x, cuts)])
        assert np.array_equal(got, whole, equal_nan=True)
    stream = det.stream()  # one row at a time, and Arrow tables
    one = np.concatenate([stream.score_many(row) for row in x[:50]])
    assert np.array_equal(one, whole[:50], equal_nan=True)
    names = [f"x{i}" for i in range(x.shape[1])]
    table = pa.table({n: x[:, i] for i, n in enumerate(names)})
    stream = det.stream()
    got = np.concatenate([stream.score_many(table.slice(0, 123)), stream.score_many(table.slice(123))])
    assert np.array_equal(got, whole, equal_nan=True)


def test_options_are_checked() -> None:
    for bad in ({"lags": -1}, {"lags": 11}, {"smooth": 0}, {"smooth": 121}, {"lags": 1.5}, {"lags": True}):
        with pytest.raises(ValueError, match=r"PCADetector: (lags|smooth) must be an integer"):
            PCADetector(**bad)  # type: ignore[arg-type]
    det = PCADetector(lags=1).learn_many(series()[:100])
    with pytest.raises(ValueError, match=r"use stream\(\)"):
        det.score_one([0.0, 0.0, 0.0, 0.0])
    # the plant model's bounds are the library's
    assert (model_analytics.MAX_LAGS, model_analytics.MAX_SMOOTH) == (dynamic.MAX_LAGS, dynamic.MAX_SMOOTH)


def test_default_and_other_detectors_stream_without_history() -> None:
    x = series(300)
    det = PCADetector().learn_many(x[:200])
    assert (det.lags, det.smooth) == (0, 1)
    assert np.array_equal(det.stream().score_many(x), det.score_many(x))
    assert det.score_one(x[5]) == det.score_many(x)[5]
    forest = IsolationForestDetector().learn_many(x[:200])
    assert np.array_equal(forest.stream().score_many(x[200:]), forest.score_many(x[200:]))
