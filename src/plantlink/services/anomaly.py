"""Anomaly detection in shadow mode: learn a machine's normal operation from the historian, score live batches.

``train`` reads a user-picked baseline period of a machine's tags from the historian (the ``mean`` of each tag
per ``interval``; buckets where a tag has no value are left out), learns a detector of
:mod:`plantlink.analytics.anomaly` on it and keeps it. ``on_batch`` takes each live sample batch (the
``plantlink.samples`` schema): per trained machine it holds the last good value of each of its tags and,
once every tag has one, scores that instant (one score per machine and batch, at the batch's newest sample of
those tags) and hands the scores, as samples of the machine's score tag, to the sink (the historian's
``write``). Shadow mode: nothing raises an alarm; the scores are only stored, to be trended and judged
before anyone acts on them. A score above 1 (PCA) or above the detector's threshold is what would alarm.

The caller resolves tag paths to ids and checks access (``PlantIndex``) and registers the score tag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.analytics.anomaly import BaselineError, Detector, PCADetector
from plantlink.errors import Unavailable
from plantlink.samples import Quality, concat, numeric_batch
from plantlink.services.deps import SampleReader

Kind = Literal["pca", "iforest"]


def baseline_matrix(table: pa.Table, tag_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Pivot the historian's per-bucket ``mean`` (``tag_id``, ``bucket``, ``mean``) to one row per bucket and
    one column per tag (in ``tag_ids`` order); buckets where any tag has no finite mean are left out.
    Returns the matrix and the buckets' start (int64 us)."""
    ids = np.asarray(table.column("tag_id").to_numpy(), dtype=np.int64)
    buckets = np.asarray(table.column("bucket").cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    means = np.asarray(table.column("mean").to_numpy(zero_copy_only=False), dtype=np.float64)
    times = np.unique(buckets)
    x = np.full((times.size, len(tag_ids)), np.nan)
    for j, tid in enumerate(tag_ids):
        rows = ids == tid
        x[np.searchsorted(times, buckets[rows]), j] = means[rows]
    keep = np.isfinite(x).all(axis=1)
    return x[keep], times[keep]


@dataclass
class ShadowModel:
    """A detector trained for one machine, and the last good value of each of its tags."""

    machine: str
    tag_ids: tuple[int, ...]
    score_tag_id: int
    detector: Detector
    baseline_rows: int
    start_us: int
    end_us: int
    interval_us: int
    held: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.held = np.full(len(self.tag_ids), np.nan)


class AnomalyShadow:
    """Trains detectors from the historian and scores live batches into score tags (no alarm)."""

    def __init__(self, samples: Callable[[], SampleReader | None], sink: Callable[[pa.RecordBatch], None]):
        self._samples, self._sink = samples, sink
        self.models: dict[str, ShadowModel] = {}

    def train(self, machine: str, tag_ids: Sequence[int], start_us: int, end_us: int, interval_us: int,
              score_tag_id: int, kind: Kind = "pca") -> ShadowModel:
        """Learn ``machine``'s normal operation over ``[start_us, end_us)`` from its tags' means per interval."""
        if len(set(tag_ids)) != len(tag_ids) or score_tag_id in tag_ids:
            raise ValueError(f"{machine}: the tags must be distinct and not include the score tag {score_tag_id}")
        hist = self._samples()
        if hist is None:
            raise Unavailable("the historian is not open")
        table = hist.aggregate(list(tag_ids), start_us, end_us, interval_us, ["mean"])
        x, _ = baseline_matrix(table, tag_ids)
        detector = _make(kind)
        try:
            detector.learn_many(x, columns=[str(t) for t in tag_ids])
        except BaselineError as e:
            raise BaselineError(f"{machine}, tag ids {list(tag_ids)}, {start_us}..{end_us} us: {e}") from None
        model = ShadowModel(machine, tuple(tag_ids), score_tag_id, detector, x.shape[0], start_us, end_us,
                            interval_us)
        self.models[machine] = model
        return model

    def forget(self, machine: str) -> None:
        self.models.pop(machine, None)

    def on_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        """Score each trained machine whose tags are in ``batch``; the scores go to the sink and are returned."""
        out = [s for m in self.models.values() if (s := _score(m, batch)) is not None]
        if not out:
            return None
        scores = concat(out)
        self._sink(scores)
        return scores


def _make(kind: Kind, lags: int = 0, smooth: int = 1, variance: float | None = None,
          alpha: float | None = None) -> Detector:
    if kind == "pca":
        return PCADetector(variance=0.90 if variance is None else variance, alpha=0.01 if alpha is None else alpha,
                           lags=lags, smooth=smooth)
    if lags or smooth != 1 or variance is not None or alpha is not None:
        raise ValueError(f"lags, smooth, variance and alpha apply to detector pca only, not {kind}")
    if kind == "iforest":
        from plantlink.analytics.iforest import IsolationForestDetector  # scikit-learn only when asked for

        return IsolationForestDetector()
    raise ValueError(f"unknown detector kind {kind!r}: choose 'pca' or 'iforest'")


def _score(model: ShadowModel, batch: pa.RecordBatch) -> pa.RecordBatch | None:
    ids = np.asarray(batch.column("tag_id").to_numpy(), dtype=np.int64)
    value = batch.column("value")
    good = pc.and_(pc.is_valid(value), pc.greater_equal(batch.column("quality"), int(Quality.GOOD)))
    good_np = np.asarray(good.to_numpy(zero_copy_only=False), dtype=bool)
    vals = np.asarray(value.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
    ts = np.asarray(batch.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    newest = None
    for j, tid in enumerate(model.tag_ids):
        rows = np.flatnonzero((ids == tid) & good_np & np.isfinite(vals))
        if rows.size:
            last = rows[np.argmax(ts[rows])]
            model.held[j] = vals[last]
            newest = ts[last] if newest is None else max(newest, ts[last])
    if newest is None or not np.isfinite(model.held).all():
        return None
    score = model.detector.score_one(model.held)
    return numeric_batch([model.score_tag_id], int(newest), [score], int(Quality.GOOD))
