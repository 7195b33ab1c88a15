"""AnomalyShadow on a real DuckDB historian: a baseline period read back from it, live batches scored into a
score tag, the stored scores checked against the detector scoring the same rows directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from plantlink.analytics.anomaly import BaselineError, PCADetector
from plantlink.historian import open_historian
from plantlink.historian.base import Historian, TagMeta
from plantlink.samples import Quality, numeric_batch
from plantlink.services.anomaly import AnomalyShadow, baseline_matrix

T0 = 1_767_225_600_000_000  # 2026-01-01 00:00 UTC
S = 1_000_000
MIX = np.array([[1.0, 0.9, 0.5], [0.0, 0.4, 0.3], [0.0, 0.0, 0.3]])


@pytest.fixture
def hist(tmp_path: Path) -> Iterator[Historian]:
    h = open_historian("duckdb", path=tmp_path / "h.duckdb")
    yield h
    h.close()


def rows_batch(ids: list[int], t_us: int, row: np.ndarray, quality: int = int(Quality.GOOD)) -> pa.RecordBatch:
    return numeric_batch(ids, t_us, row, quality)


def test_train_from_the_historian_and_score_live_batches(hist: Historian) -> None:
    ids = list(hist.register_tags([TagMeta(f"m1/t{i}") for i in range(3)]).values())
    score_id = hist.register_tags([TagMeta("m1/anomaly_score")])["m1/anomaly_score"]
    rng = np.random.default_rng(1)
    base = rng.normal(size=(600, 3)) @ MIX + 20.0
    for i, row in enumerate(base):
        hist.write(rows_batch(ids, T0 + i * S, row))
    hist.flush()
    shadow = AnomalyShadow(lambda: hist, hist.write)
    model = shadow.train("m1", ids, T0, T0 + 600 * S, S, score_id)
    assert model.baseline_rows == 600
    # the same detector learnt directly on the rows written: same limits
    direct = PCADetector().learn_many(base)
    assert model.detector.threshold == 1.0
    assert isinstance(model.detector, PCADetector)
    assert model.detector.t2_limit == pytest.approx(direct.t2_limit)

    live = rng.normal(size=(60, 3)) @ MIX + 20.0
    live[40:, 1] -= 3.0  # t1 breaks away from t0 from the 41st second on
    t_live = T0 + 3600 * S
    for i, row in enumerate(live):
        out = shadow.on_batch(rows_batch(ids, t_live + i * S, row))
        assert out is not None and out.num_rows == 1
    # a batch of other tags, and a bad-quality sample, score nothing new
    assert shadow.on_batch(rows_batch([999], t_live, np.array([1.0]))) is None
    assert shadow.on_batch(rows_batch([ids[0]], t_live + 100 * S, np.array([1e6]), int(Quality.BAD))) is None
    hist.flush()
    stored = hist.raw(score_id, t_live, t_live + 200 * S)
    assert stored.num_rows == 60
    np.testing.assert_allclose(stored.column("value").to_numpy(), direct.score_many(live), rtol=1e-9)
    scores = stored.column("value").to_numpy()
    assert (scores[40:] > 1).mean() > 0.9 and (scores[:40] > 1).mean() < 0.1


def test_one_score_per_batch_with_held_values(hist: Historian) -> None:
    ids = list(hist.register_tags([TagMeta(f"m2/t{i}") for i in range(3)]).values())
    rng = np.random.default_rng(2)
    base = rng.normal(size=(300, 3)) @ MIX
    for i, row in enumerate(base):
        hist.write(rows_batch(ids, T0 + i * S, row))
    hist.flush()
    written: list[pa.RecordBatch] = []
    shadow = AnomalyShadow(lambda: hist, written.append)
    shadow.train("m2", ids, T0, T0 + 300 * S, S, score_tag_id=77)
    # tags arrive in separate batches: nothing until every tag has had a value, then the held ones are used
    assert shadow.on_batch(rows_batch(ids[:2], T0 + 1000 * S, np.array([0.1, 0.2]))) is None
    out = shadow.on_batch(rows_batch(ids[2:], T0 + 1001 * S, np.array([0.3])))
    assert out is not None and out.column("tag_id").to_pylist() == [77]
    assert out.column("ts").cast(pa.int64()).to_pylist() == [T0 + 1001 * S]
    assert out.column("value")[0].as_py() == pytest.approx(PCADetector().learn_many(base).score_one([0.1, 0.2, 0.3]))
    assert written == [out]


def test_baseline_problems_name_the_machine(hist: Historian) -> None:
    ids = list(hist.register_tags([TagMeta(f"m3/t{i}") for i in range(2)]).values())
    for i in range(6):
        hist.write(rows_batch(ids, T0 + i * S, np.array([float(i), 1.0 + i % 2])))
    hist.flush()
    shadow = AnomalyShadow(lambda: hist, lambda b: None)
    with pytest.raises(BaselineError, match=r"m3, tag ids .*baseline: 6 rows for 2 tags; at least 10"):
        shadow.train("m3", ids, T0, T0 + 6 * S, S, score_tag_id=99)
    with pytest.raises(ValueError, match="not include the score tag"):
        shadow.train("m3", ids, T0, T0 + 6 * S, S, score_tag_id=ids[0])


def test_baseline_matrix_leaves_out_incomplete_buckets() -> None:
    ts = pa.array([0, 0, 10, 20, 20], type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    table = pa.table({"tag_id": pa.array([1, 2, 1, 1, 2], pa.uint32()), "bucket": ts,
                      "mean": [1.0, 2.0, 3.0, 5.0, None]})
    x, buckets = baseline_matrix(table, [2, 1])
    np.testing.assert_array_equal(x, [[2.0, 1.0]])
    np.testing.assert_array_equal(buckets, [0])
