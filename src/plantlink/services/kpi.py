"""OEE, the losses, the top loss and top reason, the cost of losses and the bottleneck: one computation for the
API, the HMI and the CLI.

OEE of one machine over ``[start, min(end, now))`` (ISO 22400-2, see docs/oee.md):

* PBT = the site calendar's planned time in which the machine's state is known, MINUS the time it spent in
  ``planned_stop`` (a machine stopped on purpose is not an availability loss; time without data — plantlink
  not running, inputs of bad quality (``unknown``) — is neither production nor loss, so it is left out);
* APT = time in ``running`` within planned time (the state intervals of the store);
* PQ / GQ / SQ from the production counters in the historian (a sample before ``start``, within
  ``COUNTER_LOOKBACK_US``, is the base of the first increment). Only steps within a continuous stretch of
  samples count: the first reading after a restart of plantlink (the store's cuts), a device
  reconnect or bad quality (a bad sample), or a time gap (the machine's ``production.max_gap``, when set) is a
  baseline; what the counter advanced across the gap is reported as ``unattributed``, not in the KPIs. A ratio
  above 1 sets ``data_problem``.

Lines, areas and sites combine their machines' inputs (sums, never means of ratios). Named periods follow
``services.periods``. Figures of the live periods are cached per machine for ``LIVE_TTL_S`` seconds so that
the overview renders fast.

Two "top" figures, named apart (they were both called ``top_loss`` before, see docs/oee.md):
``top_loss`` is the largest of the three OEE losses (``availability``, ``performance``, ``quality``) in seconds;
``top_reason`` is the downtime reason (or, for stops without one, the state) that lost the most time,
micro-stops left out.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import pyarrow as pa

from plantlink.engines import bottleneck as bn
from plantlink.engines.bottleneck import Analysis, MachineFigures
from plantlink.engines.calendar import merge_intervals, overlap_us
from plantlink.engines.costs import CostOfLosses, losses
from plantlink.engines.oee import Gaps, OeeInputs, OeeResult, combine, compute, inputs_from_states
from plantlink.engines.oee_spans import Counter, inputs_over_spans
from plantlink.errors import PlantlinkError, QueryError, Unavailable
from plantlink.identity import Caller
from plantlink.model.production import Costs
from plantlink.samples import Quality, now_us
from plantlink.services.deps import SampleReader, StateRecords
from plantlink.services.kpi_reports import (
    CostReport,
    Figures,
    LineSummary,
    MachineSummary,
    OeeReport,
    Overview,
    SiteSummary,
    TopLoss,
    TopReason,
    combined,
    cost_of,
)
from plantlink.services.periods import LIVE_PERIODS, Periods
from plantlink.services.plant import MachineRef, NotFound, PlantIndex, check_range
from plantlink.services.preload import Losses, Preloaded

__all__ = ["Analysis", "CostOfLosses", "CostReport", "Figures", "KpiService", "LineSummary", "MachineFigures",
           "MachineSummary", "OeeInputs", "OeeReport", "OeeResult", "Overview", "SiteSummary", "TopLoss", "TopReason",
           "combined", "cost_of"]

LIVE_TTL_S = 5.0
COUNTER_LOOKBACK_US = 3600 * 1_000_000
MAX_COUNTER_SAMPLES = 5_000_000
MAX_RANGE_US = 400 * 86400 * 1_000_000
MAX_SHIFT_RANGE_US = 93 * 86400 * 1_000_000
_ZERO = OeeInputs(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
T = TypeVar("T")


class _Cache(Generic[T]):
    """Small TTL cache of (scope, period) -> (start_us, figure); thread-safe."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], tuple[float, int, T]] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[int, T] | None:
        with self.lock:
            hit = self.items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, key: tuple[str, str], start_us: int, value: T) -> None:
        with self.lock:
            self.items[key] = (time.monotonic() + LIVE_TTL_S, start_us, value)


def _overlap_s(intervals: list[tuple[int, int, str]], states: set[str] | None, plan_s: Any, plan_e: Any) -> float:
    """Seconds of planned time covered by intervals in ``states`` (None: any state but ``unknown``)."""
    keep = [(s, e) for s, e, st in intervals if (st in states if states is not None else st != "unknown")]
    iv_s, iv_e = merge_intervals([s for s, _ in keep], [e for _, e in keep])
    return float(overlap_us(iv_s, iv_e, plan_s, plan_e).sum()) / 1e6


def _top(spent: dict[str, float]) -> TopReason | None:
    if not spent:
        return None
    key = max(spent, key=lambda k: spent[k])
    return TopReason(key, spent[key])


class KpiService:
    """OEE and what derives from it, over the historian's counters and the store's state intervals."""

    def __init__(self, index: PlantIndex, periods: Periods, samples: Callable[[], SampleReader | None],
                 records: Callable[[], StateRecords | None],
                 current: Callable[[], dict[str, tuple[str, int]]]):
        self.index, self.periods = index, periods
        self._samples, self._records, self._current = samples, records, current
        self._cache: _Cache[OeeInputs] = _Cache()
        self._reason_cache: _Cache[TopReason | None] = _Cache()

    # -- one machine -------------------------------------------------------------------------------
    def _counter(self, m: MachineRef, name: str | None, start: int, end: int, pre: Preloaded | None = None
                 ) -> tuple[np.ndarray, np.ndarray] | None:
        if name is None:
            return None
        if pre is not None:
            return pre.counter(name, start - COUNTER_LOOKBACK_US, end)
        tid = self.index.ids.get(f"{m.path}/{name}")
        hist = self._samples()
        if tid is None or hist is None:
            raise PlantlinkError(f"machine {m.path}: production counter tag {name!r} is not in the historian")
        t = hist.raw(tid, start - COUNTER_LOOKBACK_US, end, MAX_COUNTER_SAMPLES + 1)
        if t.num_rows > MAX_COUNTER_SAMPLES:
            raise QueryError(f"more than {MAX_COUNTER_SAMPLES} counter samples in the range: shorten it", field="end")
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        v = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        q = t.column("quality").to_numpy(zero_copy_only=False)
        return ts, np.where(q >= Quality.UNCERTAIN, v, np.nan)

    def machine_inputs(self, m: MachineRef, start: int, end: int, now: int | None = None,
                       pre: Preloaded | None = None) -> OeeInputs | None:
        """OEE inputs of one machine over ``[start, min(end, now))``; None when it has no production counters.
        ``pre``: the machine's data over a range holding this one, read once (see :meth:`oee_by_shift`)."""
        prod = m.model.production
        if prod is None:
            return None
        t = now_us() if now is None else now
        end = min(end, t)
        records = self._records()
        if end <= start or records is None:
            return dataclasses.replace(_ZERO, pri_s=prod.ideal_cycle_time)
        planned = self.index.planned[m.site]
        if pre is not None:
            intervals = pre.intervals(start, end)
        else:
            ivs = records.intervals(start, end, machines=[m.path], open_until=t)
            intervals = [(iv.start_us, iv.end_us if iv.end_us is not None else end, iv.state) for iv in ivs]
        produced = self._counter(m, prod.produced, start, end, pre)
        assert produced is not None
        max_gap = prod.max_gap
        cuts = pre.cuts(start - COUNTER_LOOKBACK_US, end) if pre is not None else \
            records.cuts(start - COUNTER_LOOKBACK_US, end)
        gaps = Gaps(cuts=cuts, max_gap_us=None if max_gap is None else round(max_gap * 1e6))
        inputs = inputs_from_states(
            intervals, planned, start, end, pri_s=prod.ideal_cycle_time, produced=produced,
            good=self._counter(m, prod.good, start, end, pre), reject=self._counter(m, prod.reject, start, end, pre),
            counter_max=prod.counter_max, gaps=gaps)
        plan_s, plan_e = planned.planned_arrays(start, end)
        stopped = _overlap_s(intervals, {"planned_stop"}, plan_s, plan_e)
        known = _overlap_s(intervals, None, plan_s, plan_e)  # planned time with a known state
        return dataclasses.replace(inputs, pbt_s=max(known - stopped, 0.0))

    def _live_inputs(self, m: MachineRef, period: str, now: int | None) -> tuple[int, OeeInputs] | None:
        if m.model.production is None:
            return None
        if now is None and (hit := self._cache.get((m.path, period))) is not None:
            return hit
        start, end = self.periods.bounds(m.site, period, now)
        inputs = self.machine_inputs(m, start, end, end)
        assert inputs is not None
        if now is None:
            self._cache.put((m.path, period), start, inputs)
        return start, inputs

    # -- scopes ------------------------------------------------------------------------------------
    def _report(self, scope: str, kind: str, start: int, end: int, per: list[tuple[MachineRef, OeeInputs]],
                every: list[MachineRef], events: Losses | None = None, **extra: Any) -> OeeReport:
        """The report of ``per`` (the machines with production counters); the top reasons are of ``every``
        machine of the scope."""
        machines = tuple((m.path, Figures.of(i)) for m, i in per) if kind != "machine" else ()
        total, each = self._reasons(kind, scope, every, start, end, events)
        return OeeReport(scope, kind, start, end, Figures.of(combine(i for _, i in per)), machines,
                         {scope: total, **each}, **extra)

    def oee(self, who: Caller, scope: str, start_us: int, end_us: int, *, now: int | None = None) -> OeeReport:
        """OEE of a machine, line, area or site over ``[start, end)`` (capped at now)."""
        check_range(start_us, end_us, MAX_RANGE_US)
        kind, ms = self.index.machines_under(who, scope)
        per = [(m, i) for m in ms if (i := self.machine_inputs(m, start_us, end_us, now)) is not None]
        if kind == "machine" and not per:
            raise NotFound(f"machine {scope!r} has no production counters: no OEE", field="scope")
        return self._report(scope.strip("/"), kind, start_us, min(end_us, now or now_us()), per, ms)

    def oee_period(self, who: Caller, scope: str, period: str = "today", *, now: int | None = None) -> OeeReport:
        """Live OEE of a named period (``LIVE_PERIODS``), cached briefly."""
        if period not in LIVE_PERIODS:
            raise QueryError(f"period must be one of {list(LIVE_PERIODS)}, got {period!r}", field="period")
        kind, ms = self.index.machines_under(who, scope)
        per, starts = [], []
        for m in ms:
            hit = self._live_inputs(m, period, now)
            if hit is not None:
                starts.append(hit[0])
                per.append((m, hit[1]))
        if kind == "machine" and not per:
            raise NotFound(f"machine {scope!r} has no production counters: no OEE", field="scope")
        t = now_us() if now is None else now
        start = min(starts) if starts else self.periods.bounds(scope.strip("/").split("/", 1)[0], period, t)[0]
        return self._report(scope.strip("/"), kind, start, t, per, ms, period=period)

    def oee_by_shift(self, who: Caller, scope: str, start_us: int, end_us: int, *, now: int | None = None
                     ) -> list[OeeReport]:
        """OEE of each shift occurrence of the site's calendar overlapping the range."""
        check_range(start_us, end_us, MAX_SHIFT_RANGE_US)
        spans = self.index.planned[scope.strip("/").split("/", 1)[0]].shifts(start_us, end_us)
        return self.oee_spans(who, scope, start_us, end_us, [
            (s.start_us, s.end_us, {"shift": s.name, "day": s.day.isoformat()}) for s in spans], now=now)[1]

    def oee_spans(self, who: Caller, scope: str, start_us: int, end_us: int,
                  spans: Sequence[tuple[int, int, Mapping[str, Any]]], *, now: int | None = None
                  ) -> tuple[OeeReport, list[OeeReport]]:
        """OEE over ``[start, end)`` (as :meth:`oee`) and over each span inside it (``extra``: the report's
        ``shift`` and ``day``), reading each machine's data and the scope's events once for all."""
        check_range(start_us, end_us, MAX_SHIFT_RANGE_US)
        kind, ms = self.index.machines_under(who, scope)
        t = now_us() if now is None else now
        pre = self._preload(ms, start_us, end_us, t)  # one read for every machine
        events = self._events(kind, scope, ms, start_us, end_us)
        ranges = [(start_us, min(end_us, t)), *((s, e) for s, e, _ in spans)]
        found = {m.path: self._span_inputs(m, pre[m.path], ranges, t) for m in ms}

        def report(k: int, s: int, e: int, **extra: Any) -> OeeReport:
            per = [(m, i) for m in ms if (i := found[m.path][k]) is not None]
            return self._report(scope.strip("/"), kind, s, e, per, ms, events, **extra)

        return report(0, *ranges[0]), [report(k, s, e, **extra) for k, (s, e, extra) in enumerate(spans, 1)]

    def _span_inputs(self, m: MachineRef, pre: Preloaded | None, ranges: list[tuple[int, int]], now: int
                     ) -> list[OeeInputs | None]:
        """:meth:`machine_inputs` of each range, from the machine's preloaded data in one pass
        (``engines.oee_spans``)."""
        prod = m.model.production
        if prod is None:
            return [None] * len(ranges)
        if pre is None:  # no store, or nothing before now: each range answers without reading
            return [self.machine_inputs(m, s, e, now, pre) for s, e in ranges]
        clipped = [(s, min(e, now)) for s, e in ranges]
        live = [k for k, (s, e) in enumerate(clipped) if e > s]
        out: list[OeeInputs | None] = [dataclasses.replace(_ZERO, pri_s=prod.ideal_cycle_time)] * len(ranges)

        def counter(name: str | None) -> Counter | None:
            return None if name is None else Counter(*pre.counters[name])

        max_gap = prod.max_gap
        got = inputs_over_spans(
            pre.states, self.index.planned[m.site], [clipped[k] for k in live], pri_s=prod.ideal_cycle_time,
            produced=Counter(*pre.counters[prod.produced]), good=counter(prod.good), reject=counter(prod.reject),
            counter_max=prod.counter_max,
            gaps=Gaps(cuts=pre.all_cuts, max_gap_us=None if max_gap is None else round(max_gap * 1e6)),
            lookback_us=COUNTER_LOOKBACK_US)
        for k, inputs in zip(live, got, strict=True):
            out[k] = inputs
        return out

    def _preload(self, ms: list[MachineRef], start: int, end: int, now: int) -> dict[str, Preloaded | None]:
        """Each machine's counters, state intervals and cuts over ``[start, min(end, now))``: one read of the
        historian for every counter, one of the store for every interval, whatever the number of machines."""
        records, end = self._records(), min(end, now)
        counted = [m for m in ms if m.model.production is not None]
        if records is None or end <= start or not counted:
            return {m.path: None for m in ms}
        counters = self._counters(counted, start, end)
        by_machine: dict[str, list[tuple[int, int, str]]] = {m.path: [] for m in counted}
        for machine, s, e, state in records.spans(start, end, machines=[m.path for m in counted], open_until=now):
            by_machine[machine].append((s, e, state))
        cuts = records.cuts(start - COUNTER_LOOKBACK_US, end)
        return {m.path: Preloaded(by_machine[m.path], counters[m.path], cuts) if m.path in by_machine else None
                for m in ms}

    def _counters(self, ms: list[MachineRef], start: int, end: int
                  ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """machine path -> counter name -> (ts, value with bad samples NaN), read in one query."""
        hist, wanted = self._samples(), {}
        for m in ms:
            prod = m.model.production
            assert prod is not None
            for name in (n for n in (prod.produced, prod.good, prod.reject) if n is not None):
                tid = self.index.ids.get(f"{m.path}/{name}")
                if tid is None or hist is None:
                    raise PlantlinkError(f"machine {m.path}: production counter tag {name!r} is not in the historian")
                wanted[tid] = (m.path, name)
        out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {m.path: {} for m in ms}
        if hist is None:
            return out
        t = hist.raw_many(list(wanted), start - COUNTER_LOOKBACK_US, end, MAX_COUNTER_SAMPLES + 1)
        tids = t.column("tag_id").to_numpy()
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        v = t.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        v = np.where(t.column("quality").to_numpy(zero_copy_only=False) >= Quality.UNCERTAIN, v, np.nan)
        for tid, (path, name) in wanted.items():
            lo, hi = np.searchsorted(tids, tid, "left"), np.searchsorted(tids, tid, "right")  # by tag id
            if hi - lo > MAX_COUNTER_SAMPLES:
                raise QueryError(f"more than {MAX_COUNTER_SAMPLES} counter samples in the range: shorten it",
                                 field="end")
            out[path][name] = (ts[lo:hi], v[lo:hi])
        return out

    # -- costs, top reason -------------------------------------------------------------------------
    def line_costs(self, who: Caller, line: str, start_us: int, end_us: int, *, now: int | None = None
                   ) -> CostReport:
        """Money lost to availability, performance and quality losses on a line (and per machine)."""
        check_range(start_us, end_us, MAX_RANGE_US)
        ref = self.index.line(who, line)
        costs = ref.model.costs or Costs()
        found = [(mp, self.machine_inputs(self.index.machines[mp], start_us, end_us, now)) for mp in ref.machines]
        kept = [(mp, i) for mp, i in found if i is not None]
        total = combine(i for _, i in kept)
        return CostReport(ref.path, ref.model.costs is not None, start_us, min(end_us, now or now_us()),
                          losses(compute(total), total, costs),
                          tuple((mp, losses(compute(i), i, costs)) for mp, i in kept))

    def top_reason(self, who: Caller, scope: str, start_us: int, end_us: int) -> TopReason | None:
        """The reason (or, unassigned, the state) that lost the most time in a scope; micro-stops and
        ``unknown`` left out."""
        kind, ms = self.index.machines_under(who, scope)
        return self._reasons(kind, scope, ms, start_us, end_us)[0]

    def _reasons(self, kind: str, scope: str, ms: list[MachineRef], start_us: int, end_us: int,
                 events: Losses | None = None) -> tuple[TopReason | None, dict[str, TopReason | None]]:
        """The top reason of the scope and of each of its machines (one pass over the scope's events;
        ``events``: those of a range holding this one, read once)."""
        if events is None:
            events = self._events(kind, scope, ms, start_us, end_us)
        paths = {m.path for m in ms}
        spent: dict[str, float] = defaultdict(float)
        per: dict[str, dict[str, float]] = {m.path: defaultdict(float) for m in ms}
        for ev in events.overlapping(start_us, end_us):
            if ev.state == "unknown" or ev.machine not in paths:
                continue
            lo, hi = max(ev.start_us, start_us), min(ev.end_us if ev.end_us is not None else end_us, end_us)
            key, lost = ev.reason or f"{ev.state} (no reason)", max(hi - lo, 0) / 1e6
            spent[key] += lost
            per[ev.machine][key] += lost
        return _top(spent), {m: _top(found) for m, found in per.items()}

    def _events(self, kind: str, scope: str, ms: list[MachineRef], start_us: int, end_us: int) -> Losses:
        """The scope's downtime events (micro-stops left out) overlapping the range."""
        records = self._records()
        if records is None or not ms:
            return Losses([])
        p = scope.strip("/")
        where: dict[str, Any] = {"machine": ms[0].path} if kind == "machine" else \
            {"line": p} if kind == "line" else {"site": p.split("/", 1)[0]}
        return Losses(records.losses(start_us, end_us, micro=False, **where))

    def live_top_reason(self, who: Caller, scope: str, period: str = "today", now: int | None = None
                        ) -> TopReason | None:
        """:meth:`top_reason` over a named period (cached briefly, as the live OEE)."""
        site = scope.strip("/").split("/", 1)[0]
        key = (scope.strip("/"), period)
        if now is None and (hit := self._reason_cache.get(key)) is not None:
            return hit[1]
        start, end = self.periods.bounds(site, period, now)
        found = self.top_reason(who, scope, start, end)
        if now is None:
            self._reason_cache.put(key, start, found)
        return found

    def bottleneck(self, who: Caller, line: str, start_us: int, end_us: int, *, now: int | None = None
                   ) -> Analysis:
        """The line's constraint over the range (active-period method, ``engines.bottleneck``), with
        per-machine evidence."""
        check_range(start_us, end_us, MAX_RANGE_US)
        ref = self.index.line(who, line)
        records = self._records()
        if records is None:
            raise Unavailable("the relational store is not open")
        try:
            return bn.analyse(records, self.index.plant, ref.path, start_us, end_us,  # type: ignore[arg-type]
                              now_us() if now is None else now)
        except ValueError as exc:
            raise QueryError(str(exc), field="line") from None

    # -- overview ----------------------------------------------------------------------------------
    def overview(self, who: Caller, *, now: int | None = None) -> Overview:
        """Per visible site, line and machine: state and today's figures (cached)."""
        current = self._current()
        sites = []
        for site in self.index.visible_sites(who):
            site_inputs: list[OeeInputs] = []
            lines = []
            for lp, ref in self.index.lines.items():
                if ref.site != site:
                    continue
                machines, line_inputs = [], []
                for mp in ref.machines:
                    hit = self._live_inputs(self.index.machines[mp], "today", now)
                    state = current.get(mp)
                    if hit is not None:
                        line_inputs.append(hit[1])
                    machines.append(MachineSummary(mp, state[0] if state else None, state[1] if state else None,
                                                   Figures.of(hit[1]) if hit else None,
                                                   self.live_top_reason(who, mp, "today", now)))
                site_inputs += line_inputs
                lines.append(LineSummary(lp, combined(line_inputs), tuple(machines),
                                         self.live_top_reason(who, lp, "today", now)))
            sites.append(SiteSummary(site, combined(site_inputs), tuple(lines),
                                     self.live_top_reason(who, site, "today", now)))
        return Overview(now_us() if now is None else now, tuple(sites))
