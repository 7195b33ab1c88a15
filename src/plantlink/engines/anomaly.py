"""Live anomaly scoring: each machine with an ``anomaly:`` block and a trained detector is scored on every
batch, into its score tag ``<machine>/anomaly_score`` (handed to ``sink``: the runtime's ingest, so the
historian stores it and trends show it like any tag).

Per batch and machine (vectorised): the batch's good samples of the machine's tags, in time order, are
forward filled (from the values held since the last batch) into one row per distinct instant, scored with
the machine's detector stream (``Detector.stream()``: with ``lags`` / ``smooth`` it keeps the last rows and
statistics between batches, so live scores equal scoring the whole series at once), and the rows where
every tag has a value and the detector has its history become score samples. A score above the
limit (the block's ``limit``, else the detector's threshold: 1 for PCA) is a crossing: in mode ``alarm`` it
sets the machine's anomaly alarm through the alarm engine (``AlarmEngine.derive``); in ``shadow`` it is only
logged (on each transition) and counted.

Trained models live in ``<data dir>/analytics/anomaly/`` (``ModelFiles``: one file per machine with a
format version; version 1 files, from before ``lags`` and ``smooth``, load as lags 0 and smooth 1), are
loaded at start (a file that cannot be read is a visible ``problem`` of that machine,
never a failed start) and replaced by training (``install``), which the service runs in a worker thread.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from plantlink.analytics.anomaly import Detector
from plantlink.analytics.dynamic import DetectorStream
from plantlink.engines.alarms.derived import ANOMALY_ALARM
from plantlink.engines.loop import consume
from plantlink.model.analytics import SCORE_TAG, AnomalySettings
from plantlink.samples import Quality, numeric_batch

if TYPE_CHECKING:
    from plantlink.bus import Subscription

log = logging.getLogger("plantlink.engines.anomaly")

#: The format of a model file; version 2 adds ``lags`` and ``smooth`` (a version 1 file loads as 0 and 1);
#: a file of another version is refused (train again).
MODEL_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Trained:
    """A detector trained on a machine's baseline: its tags (paths, in column order) and where it came from."""

    machine: str
    tags: tuple[str, ...]
    kind: str
    detector: Detector
    start_us: int
    end_us: int
    interval_us: int
    rows: int
    trained_us: int
    by: str


class ModelFiles:
    """One file per machine under ``root``: ``{"version", "trained", "lags", "smooth"}`` pickled (written
    whole, then renamed). The directory is the runtime's own data directory: only plantlink writes there."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, machine: str) -> Path:
        return self.root / (machine.replace("/", "__") + ".model")

    def save(self, t: Trained) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        p = self.path(t.machine)
        tmp = p.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            doc = {"version": MODEL_VERSION, "trained": t, "lags": t.detector.lags, "smooth": t.detector.smooth}
            pickle.dump(doc, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        return p

    def load(self, machine: str) -> Trained | None:
        """The saved model of ``machine`` (None: none saved); ``ValueError`` naming the file when unusable."""
        p = self.path(machine)
        if not p.exists():
            return None
        try:
            with open(p, "rb") as f:
                doc = pickle.load(f)  # the runtime's own file in its data directory
        except Exception as exc:
            raise ValueError(f"model file {p} cannot be read ({type(exc).__name__}: {exc}); train again") from None
        if not isinstance(doc, dict) or doc.get("version") not in READABLE_VERSIONS or not isinstance(
                doc.get("trained"), Trained):
            raise ValueError(f"model file {p} is not a version {MODEL_VERSION} anomaly model; train again")
        t: Trained = doc["trained"]
        # version 1 has no lags / smooth: its detector reads them from the class defaults (0 and 1)
        if (doc.get("lags", 0), doc.get("smooth", 1)) != (t.detector.lags, t.detector.smooth):
            raise ValueError(f"model file {p} is inconsistent (lags / smooth); train again")
        if t.machine != machine:
            raise ValueError(f"model file {p} holds the model of {t.machine}, not {machine}; train again")
        return t


def _changed(d: Detector, s: AnomalySettings) -> str | None:
    """How a saved detector's options differ from the block's (None: they agree)."""
    saved: dict[str, float | None] = {"lags": d.lags, "smooth": d.smooth}
    now: dict[str, float | None] = {"lags": s.lags, "smooth": s.smooth}
    if s.detector == "pca":
        saved |= {"variance": getattr(d, "variance", None), "alpha": getattr(d, "alpha", None)}
        now |= {"variance": 0.90 if s.variance is None else s.variance, "alpha": 0.01 if s.alpha is None else s.alpha}
    diff = [k for k in saved if saved[k] != now[k]]
    if not diff:
        return None
    return (", ".join(f"{k} {saved[k]}" for k in diff) + ", the plant model now names "
            + ", ".join(f"{k} {now[k]}" for k in diff))


@dataclass
class MachineScorer:
    """One machine's live scoring state."""

    machine: str
    settings: AnomalySettings
    tags: tuple[str, ...]
    col_ids: np.ndarray  # int64: the tags' ids in column order
    score_id: int
    trained: Trained | None = None
    problem: str | None = None
    held: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stream: DetectorStream | None = None
    above: bool = False
    crossings: int = 0
    scored: int = 0
    last_score: float | None = None
    last_us: int | None = None

    @property
    def limit(self) -> float:
        if self.settings.limit is not None:
            return self.settings.limit
        return float(self.trained.detector.threshold) if self.trained is not None else float("inf")

    @property
    def alarm_key(self) -> str:
        return f"{self.machine}/{SCORE_TAG}:{ANOMALY_ALARM}"


class AnomalyEngine:
    """Scores every machine with a trained detector on each batch; alarms (mode ``alarm``) through ``alarms``."""

    def __init__(self, plant: Any, tag_ids: Mapping[str, int], alarms: Any,
                 sink: Callable[[pa.RecordBatch], None], files: ModelFiles):
        self.alarms, self.sink, self.files = alarms, sink, files
        self.machines: dict[str, MachineScorer] = self._scorers(plant, tag_ids)
        self.errors = 0

    def _scorers(self, plant: Any, tag_ids: Mapping[str, int]) -> dict[str, MachineScorer]:
        out = {}
        for path, m in plant.machines():
            a = m.anomaly
            score = tag_ids.get(f"{path}/{SCORE_TAG}")
            if a is None or score is None:
                continue
            tags = tuple(f"{path}/{t}" for t in a.tags)
            ids = np.array([tag_ids[t] for t in tags], dtype=np.int64)
            ms = MachineScorer(path, a, tags, ids, int(score))
            if a.mode == "alarm":  # the condition as saved before the last stop (or the apply)
                ms.above = self.alarms.condition(ms.alarm_key)
            out[path] = ms
        return out

    def reload(self, plant: Any, tag_ids: Mapping[str, int]) -> list[str]:
        """Take the anomaly settings of a model applied while running: a machine whose settings and tag ids
        did not change keeps its scorer (trained detector, stream, condition); a changed or new one is built
        again. Returns the machines whose saved detector must be loaded (``load(only=...)``, in a thread)."""
        fresh = self._scorers(plant, tag_ids)
        again = []
        for path, ms in fresh.items():
            old = self.machines.get(path)
            if (old is not None and old.settings == ms.settings and old.score_id == ms.score_id
                    and np.array_equal(old.col_ids, ms.col_ids)):
                fresh[path] = old
            else:
                again.append(path)
        self.machines = fresh
        return again

    def load(self, only: Iterable[str] | None = None) -> int:
        """Load the saved models (at start, of ``only`` those machines after an apply; in a worker thread).
        Returns how many; a bad file is a problem."""
        n = 0
        wanted = None if only is None else set(only)
        for path, ms in list(self.machines.items()):
            if wanted is not None and path not in wanted:
                continue
            try:
                t = self.files.load(path)
            except ValueError as exc:
                ms.problem = str(exc)
                log.error("anomaly: %s", exc)
                continue
            if t is not None and t.tags != ms.tags:
                ms.problem = (f"the saved model of {path} was trained on {', '.join(t.tags)}, the plant model now "
                              f"names {', '.join(ms.tags)}; train again")
                log.error("anomaly: %s", ms.problem)
                continue
            if t is not None and (changed := _changed(t.detector, ms.settings)):
                ms.problem = f"the saved model of {path} has {changed}; train again"
                log.error("anomaly: %s", ms.problem)
                continue
            if t is not None:
                self.install(t)
                n += 1
        return n

    def install(self, t: Trained) -> None:
        ms = self.machines[t.machine]
        ms.trained, ms.problem, ms.held = t, None, np.full(len(ms.tags), np.nan)
        ms.stream = t.detector.stream()  # a new model starts a new history

    # -- scoring ----------------------------------------------------------------------------------------
    def feed(self, batch: pa.RecordBatch) -> int:
        """Score the batch; returns the number of scores written."""
        live = [m for m in self.machines.values() if m.trained is not None]
        if not live or batch.num_rows == 0:
            return 0
        ids = np.asarray(batch.column("tag_id").to_numpy(zero_copy_only=False), dtype=np.int64)
        vals = np.asarray(batch.column("value").fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        q = np.asarray(batch.column("quality").to_numpy(zero_copy_only=False))
        good = (q >= Quality.GOOD) & np.isfinite(vals)
        ts: np.ndarray | None = None
        out = []
        for ms in live:
            mine = np.isin(ids, ms.col_ids) & good
            if not mine.any():
                continue
            if ts is None:
                ts = np.asarray(batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
            scored = self._score(ms, np.flatnonzero(mine), ids, ts, vals)
            if scored is not None:
                out.append(scored)
        for b in out:
            self.sink(b)
        return sum(b.num_rows for b in out)

    def _score(self, ms: MachineScorer, rows: np.ndarray, ids: np.ndarray, ts: np.ndarray,
               vals: np.ndarray) -> pa.RecordBatch | None:
        assert ms.trained is not None
        rows = rows[np.argsort(ts[rows], kind="stable")]
        t, v = ts[rows], vals[rows]
        col = np.searchsorted(np.sort(ms.col_ids), ids[rows])
        col = np.argsort(ms.col_ids)[col]  # column of each row's tag
        n, k = rows.size, len(ms.tags)
        at = np.full((n, k), -1, dtype=np.int64)
        at[np.arange(n), col] = np.arange(n)
        np.maximum.accumulate(at, axis=0, out=at)  # each column's newest sample so far
        x = np.where(at >= 0, v[np.maximum(at, 0)], ms.held[None, :])
        last = np.ones(n, dtype=bool)
        last[:-1] = t[1:] != t[:-1]  # one row per instant: after its last sample
        x, t = x[last], t[last]
        ms.held = x[-1].copy()
        ok = np.isfinite(x).all(axis=1)
        if not ok.any():
            return None
        x, t = x[ok], t[ok]
        assert ms.stream is not None
        scores = np.asarray(ms.stream.score_many(x), dtype=np.float64)
        has = np.isfinite(scores)  # NaN: no full history yet (lags / smooth)
        if not has.all():
            if not has.any():
                return None
            scores, t = scores[has], t[has]
        ms.scored += scores.size
        ms.last_score, ms.last_us = float(scores[-1]), int(t[-1])
        self._crossings(ms, t, scores)
        return numeric_batch(np.full(scores.size, ms.score_id), t, scores, int(Quality.GOOD))

    def _crossings(self, ms: MachineScorer, t: np.ndarray, scores: np.ndarray) -> None:
        above = scores > ms.limit
        prev = np.concatenate([[ms.above], above[:-1]])
        change = np.flatnonzero(above != prev)
        ms.above = bool(above[-1])
        if change.size == 0:
            return
        ms.crossings += int(above[change].sum())
        if ms.settings.mode == "alarm":
            self.alarms.derive([ms.alarm_key] * change.size, t[change].tolist(), above[change].tolist(),
                               scores[change].tolist())
            return
        for i in change.tolist():
            log.info("anomaly (shadow) %s: score %.3g %s the limit %.3g", ms.machine, scores[i],
                     "above" if above[i] else "back below", ms.limit)

    def tick(self) -> None:
        """Nothing runs on time."""

    def status(self, machine: str) -> dict[str, Any]:
        ms = self.machines[machine]
        t = ms.trained
        return {"machine": machine, "mode": ms.settings.mode, "detector": ms.settings.detector,
                "lags": ms.settings.lags, "smooth": ms.settings.smooth,
                "tags": list(ms.tags), "trained": t is not None, "problem": ms.problem,
                "limit": ms.limit if t is not None else ms.settings.limit,
                "baseline": None if t is None else {"start_us": t.start_us, "end_us": t.end_us, "rows": t.rows,
                                                    "interval_us": t.interval_us, "trained_us": t.trained_us,
                                                    "by": t.by},
                "score": ms.last_score, "score_us": ms.last_us, "above": ms.above, "crossings": ms.crossings,
                "scored": ms.scored}

    async def run(self, sub: Subscription) -> None:
        await consume(self, sub, name="anomaly", tick_interval=60.0)
