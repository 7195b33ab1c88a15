"""Remaining useful life of a machine's wearing part, from its wear-indicator tags in the historian.

A machine's wearing part (the simulated CNC's spindle bearing: its ``vibration`` and ``bearing_temperature``
grow until fault 31) runs from one replacement to its failure. ``failures`` finds the failures in the
historian: the instants its fault tag turns to the failure code. ``train`` learns an
:class:`~plantlink.analytics.rul.RULEstimator` from past runs (each from one failure, when the part was
replaced, to the next): one row per ``interval`` (one "cycle" of the estimator), the tags' ``aggregate``
over it (``max`` by default: the peak shows the wear when the machine runs, a mean is diluted by stops);
buckets where a tag has no value are left out. ``estimate`` reads the rows since the last replacement up to
``now`` and returns the RUL in intervals with its band, and the failure dates.

The caller resolves tag paths to ids and checks access (``PlantIndex``). Nothing alarms yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np

from plantlink.analytics.rul import RULError, RULEstimate, RULEstimator
from plantlink.errors import Unavailable
from plantlink.historian.base import Aggregate
from plantlink.services.anomaly import baseline_matrix
from plantlink.services.deps import SampleReader


@dataclass(frozen=True)
class RULModel:
    """An estimator trained for one machine, and where its inputs come from."""

    machine: str
    tag_ids: tuple[int, ...]
    fault_tag_id: int
    failure_code: int
    interval_us: int
    aggregate: Aggregate
    estimator: RULEstimator
    runs: int


@dataclass(frozen=True)
class RULReading:
    """A machine's RUL at ``at_us`` (intervals after it), with the earliest, expected and latest failure."""

    machine: str
    at_us: int
    since_us: int
    estimate: RULEstimate
    failure: tuple[datetime, datetime, datetime]


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class RemainingLife:
    """Trains RUL estimators from the historian's run-to-failure history and estimates a machine's RUL."""

    def __init__(self, samples: Callable[[], SampleReader | None]) -> None:
        self._samples = samples
        self.models: dict[str, RULModel] = {}

    def _hist(self) -> SampleReader:
        hist = self._samples()
        if hist is None:
            raise Unavailable("the historian is not open")
        return hist

    def failures(self, fault_tag_id: int, code: int, start_us: int, end_us: int) -> list[int]:
        """Instants in ``[start_us, end_us)`` at which the fault tag turned to ``code`` (from another value)."""
        t = self._hist().raw(fault_tag_id, start_us, end_us, limit=1_000_000)
        ts = np.asarray(t.column("ts").cast("int64").to_numpy(), dtype=np.int64)
        v = np.asarray(t.column("value").fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        hit = v == code
        rising = hit & ~np.concatenate([[False], hit[:-1]])
        return [int(x) for x in ts[rising]]

    def rows(self, tag_ids: Sequence[int], start_us: int, end_us: int, interval_us: int,
             aggregate: Aggregate) -> np.ndarray:
        """One row per interval bucket from ``start_us``'s to ``end_us``'s (included), one column per tag."""
        end = (end_us // interval_us + 1) * interval_us
        table = self._hist().aggregate(list(tag_ids), start_us, end, interval_us, [aggregate])
        x, _ = baseline_matrix(table.rename_columns([("mean" if c == aggregate else c)
                                                     for c in table.column_names]), tag_ids)
        return x

    def train(self, machine: str, tag_ids: Sequence[int], fault_tag_id: int, failure_code: int,
              start_us: int, end_us: int, interval_us: int, aggregate: Aggregate = "max",
              window: int = 12, cap: float = 96.0) -> RULModel:
        """Learn from the runs to failure in ``[start_us, end_us)``: each from one failure of ``failure_code``
        (the part was replaced then) to the next; the time before the first failure is not used (the part's
        age is unknown). ``window`` and ``cap`` are in intervals."""
        fails = self.failures(fault_tag_id, failure_code, start_us, end_us)
        if len(fails) < 3:
            raise RULError(f"{machine}: {len(fails)} failure(s) (code {failure_code}) of tag id {fault_tag_id} "
                           f"in {_dt(start_us)}..{_dt(end_us)}; at least 3 are needed (2 complete runs)")
        units = [self.rows(tag_ids, a, b, interval_us, aggregate) for a, b in pairwise(fails)]
        est = RULEstimator([str(t) for t in tag_ids], window=window, cap=cap, min_samples_leaf=10)
        try:
            est.fit(units)
        except RULError as e:
            raise RULError(f"{machine}: {e}") from None
        model = RULModel(machine, tuple(tag_ids), fault_tag_id, failure_code, interval_us, aggregate, est,
                         len(units))
        self.models[machine] = model
        return model

    def estimate(self, machine: str, now_us: int, since_us: int | None = None) -> RULReading:
        """RUL of ``machine``'s part at ``now_us`` from its rows since ``since_us`` (by default the last failure
        before ``now_us``: the part's replacement)."""
        model = self.models.get(machine)
        if model is None:
            raise RULError(f"{machine}: no RUL model; train one first")
        if since_us is None:
            back = now_us - 60 * model.estimator.cap * model.interval_us
            fails = self.failures(model.fault_tag_id, model.failure_code, int(back), now_us)
            if not fails:
                raise RULError(f"{machine}: no failure (code {model.failure_code}) before {_dt(now_us)} to date "
                               f"the part's replacement; pass since_us")
            since_us = fails[-1]
        # the last complete bucket ends at or before now
        end = (now_us // model.interval_us) * model.interval_us - 1
        x = self.rows(model.tag_ids, since_us, end, model.interval_us, model.aggregate)
        try:
            est = model.estimator.predict(x)
        except RULError as e:
            raise RULError(f"{machine} since {_dt(since_us)}: {e}") from None
        last = _dt(end + 1)
        return RULReading(machine, now_us, since_us, est,
                          est.failure_at(last, timedelta(microseconds=model.interval_us)))
