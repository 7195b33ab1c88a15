"""Live SPC: each tag with ``spc: {alarm: true}`` is charted as its samples arrive, and each run rule it
violates raises that rule's alarm through the alarm engine (``engines.alarms.derived``).

Per tag (``SpcStream``): good samples form subgroups of ``subgroup.size`` (X-bar R / X-bar S; one point per
subgroup, its mean) or single points (I-MR). The first ``learn`` points after start set the limits with the
same functions as the SPC page (``analytics.spc``: Phase I), which then stay (Phase II); the rules are
evaluated over the last points and the new ones with ``analytics.spc_rules`` (vectorised per batch: a batch of
thousands of samples is a handful of numpy calls per tag). A rule's condition holds while the newest point
completes its pattern and clears after ``clear_after`` points in a row that do not (default 5: a pattern
that comes and goes is one alarm, not one per point); the alarm engine does the rest
(ISA-18.2 states, acknowledgement, journal).

The engine is fed by a lossless bus subscription (``run``, like the alarm and state engines) on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from plantlink.analytics import spc
from plantlink.analytics.spc_rules import evaluate, expand, window_count
from plantlink.engines.alarms.derived import spc_alarm_name
from plantlink.engines.loop import consume
from plantlink.errors import AnalysisError
from plantlink.model.spc import SpcSettings
from plantlink.samples import Quality

if TYPE_CHECKING:
    from plantlink.bus import Subscription

log = logging.getLogger("plantlink.engines.spc")

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
#: points kept before the new ones: the longest rule window (n7: 15 points) less the completing point
TAIL = 14


@dataclass(frozen=True)
class Limits:
    center: float
    sigma: float
    lcl: float
    ucl: float


@dataclass(frozen=True)
class Transition:
    rule: str
    ts_us: int
    active: bool
    value: float


class SpcStream:
    """One tag's live chart: ``learn_many`` until the limits are known, then ``score_many``; ``feed`` does
    both on the samples of a batch (in time order) and returns the rules' condition changes."""

    def __init__(self, settings: SpcSettings):
        self.settings = settings
        self.chart = settings.chart
        self.n = settings.subgroup.size if settings.subgroup is not None and settings.subgroup.size else 1
        self.rules = settings.alarm_rules or expand(settings.rules)
        self.limits: Limits | None = None
        self._pend_v: Floats = np.zeros(0)
        self._pend_t: Ints = np.zeros(0, dtype=np.int64)
        self._learn: Floats = np.zeros(0)  # Phase I samples (whole subgroups)
        self._tail: Floats = np.zeros(0)
        self.active = dict.fromkeys(self.rules, False)
        self.hold = settings.clear_after
        self._hits = {r: np.zeros(0, dtype=bool) for r in self.rules}  # each rule's last hold - 1 points
        self.points = 0

    # -- subgroups ----------------------------------------------------------------------------------------
    def _points(self, ts: Ints, v: Floats) -> tuple[Ints, Floats, Floats]:
        """Whole subgroups of the pending and new samples: (time of each point, its mean, its samples)."""
        allv, allt = np.concatenate([self._pend_v, v]), np.concatenate([self._pend_t, ts])
        k = allv.size // self.n
        used = k * self.n
        self._pend_v, self._pend_t = allv[used:], allt[used:]
        groups = allv[:used].reshape(k, self.n)
        return allt[:used][self.n - 1::self.n], groups.mean(axis=1), allv[:used]

    # -- phase I ----------------------------------------------------------------------------------------
    def learn_many(self, samples: Floats) -> int:
        """Learn from whole subgroups' samples; returns how many of them were used (the rest is to score)."""
        need = self.settings.learn * self.n - self._learn.size
        take = samples[:need]
        self._learn = np.concatenate([self._learn, take])
        if self._learn.size >= self.settings.learn * self.n:
            try:
                self.limits = self._limits(self._learn)
                log.info("spc: limits learned from %d points: %s", self.settings.learn, self.limits)
            except AnalysisError as exc:  # no variation yet: slide the window on
                self._learn = self._learn[self.n:]
                log.debug("spc: no limits yet (%s)", exc.reason)
        return int(take.size)

    def _limits(self, samples: Floats) -> Limits:
        if self.chart == "imr":
            cs = spc.imr(samples)
        else:
            sg = spc.every(samples, self.n)
            cs = spc.xbar_r(sg) if self.chart == "xbar_r" else spc.xbar_s(sg)
        c = cs.charts[0]
        return Limits(float(c.center[0]), float(c.sigma[0]), float(c.lcl[0]), float(c.ucl[0]))

    # -- phase II ---------------------------------------------------------------------------------------
    def score_many(self, ts: Ints, points: Floats) -> list[Transition]:
        """Evaluate the rules on the new points (after the kept tail); the changes of each rule's condition."""
        lim = self.limits
        assert lim is not None
        series = np.concatenate([self._tail, points])
        found = evaluate(series, lim.center, lim.sigma, lim.lcl, lim.ucl, self.rules)
        first = self._tail.size
        self._tail = series[-TAIL:]
        out: list[Transition] = []
        for rule, idx in found.items():
            hit = np.zeros(series.size, dtype=bool)
            hit[idx] = True
            on = self._held(rule, hit[first:])
            prev = np.concatenate([[self.active[rule]], on[:-1]])
            for j in np.flatnonzero(on != prev).tolist():
                out.append(Transition(rule, int(ts[j]), bool(on[j]), float(points[j])))
            self.active[rule] = bool(on[-1])
        return out

    def _held(self, rule: str, hit: Bools) -> Bools:
        """The condition after each point: a point completed the pattern within the last ``clear_after`` points
        (so it clears after that many points in a row without it, not on every other point)."""
        past = self._hits[rule]
        joined = np.concatenate([past, hit])
        self._hits[rule] = joined[max(0, joined.size - (self.hold - 1)):] if self.hold > 1 else past[:0]
        on: Bools = window_count(joined, self.hold)[past.size:] > 0
        return on

    def feed(self, ts: Ints, v: Floats) -> list[Transition]:
        pts_t, pts_v, samples = self._points(ts, v)
        self.points += pts_v.size
        if self.limits is None and samples.size:
            used = self.learn_many(samples) // self.n
            pts_t, pts_v = pts_t[used:], pts_v[used:]
        if self.limits is None or pts_v.size == 0:
            return []
        return self.score_many(pts_t, pts_v)


class SpcEngine:
    """The live SPC of every tag with ``alarm: true``, raising through ``alarms`` (an ``AlarmEngine``)."""

    def __init__(self, plant: Any, tag_ids: Mapping[str, int], alarms: Any):
        self.alarms = alarms
        self.streams: dict[int, tuple[str, SpcStream]] = {}
        self.errors = 0
        self.raised = 0
        self.reload(plant, tag_ids)

    def reload(self, plant: Any, tag_ids: Mapping[str, int]) -> None:
        """Take the SPC definitions of a model (at start, and when one is applied while running): a tag whose
        SPC settings did not change keeps its chart (learned limits, points, conditions; a tag renamed with
        ``was:`` keeps its id, so its chart too); a changed or new one learns its limits again."""
        streams: dict[int, tuple[str, SpcStream]] = {}
        for t in plant.tags:
            st = t.tag.spc
            if st is None or not st.alarm_rules or t.path not in tag_ids:
                continue
            tid = tag_ids[t.path]
            kept = self.streams.get(tid)
            if kept is not None and kept[1].settings == st:
                streams[tid] = (t.path, kept[1])
                continue
            stream = SpcStream(st)
            for rule in stream.rules:  # the conditions as saved (before the last stop, or the apply)
                stream.active[rule] = self.alarms.condition(f"{t.path}:{spc_alarm_name(rule)}")
            streams[tid] = (t.path, stream)
        self.streams = streams
        self._ids = np.array(sorted(self.streams), dtype=np.int64)

    def feed(self, batch: pa.RecordBatch) -> int:
        """Chart the batch's samples of the SPC tags; returns the number of alarm condition changes."""
        if not self.streams or batch.num_rows == 0:
            return 0
        ids = np.asarray(batch.column("tag_id").to_numpy(zero_copy_only=False), dtype=np.int64)
        mine = np.isin(ids, self._ids)
        if not mine.any():
            return 0
        vals = np.asarray(batch.column("value").fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        q = np.asarray(batch.column("quality").to_numpy(zero_copy_only=False))
        rows = np.flatnonzero(mine & (q >= Quality.GOOD) & np.isfinite(vals))
        ts = np.asarray(batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        order = rows[np.lexsort((ts[rows], ids[rows]))]
        sid = ids[order]
        bounds = np.flatnonzero(np.diff(sid)) + 1
        keys: list[str] = []
        out: list[Transition] = []
        for part in np.split(order, bounds) if order.size else []:
            path, stream = self.streams[int(ids[part[0]])]
            found = stream.feed(ts[part], vals[part])
            keys += [f"{path}:{spc_alarm_name(tr.rule)}" for tr in found]
            out += found
        if not out:
            return 0
        self.raised += sum(tr.active for tr in out)
        return int(self.alarms.derive(keys, [tr.ts_us for tr in out], [tr.active for tr in out],
                                      [tr.value for tr in out]))

    def tick(self) -> None:
        """Nothing runs on time: a rule is judged on points."""

    def status(self) -> dict[str, Any]:
        return {"tags": len(self.streams), "errors": self.errors, "raised": self.raised,
                "learned": sum(s.limits is not None for _, s in self.streams.values())}

    async def run(self, sub: Subscription) -> None:
        await consume(self, sub, name="spc", tick_interval=60.0)
