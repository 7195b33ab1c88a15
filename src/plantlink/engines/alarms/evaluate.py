"""Vectorised evaluation of every alarm condition over a batch of samples.

Per batch: rows are mapped to tags (``searchsorted``), expanded to (row, definition) pairs over a CSR of the
definitions per tag, and each pair says whether it switches the condition on, off, or neither (inside the
deadband, bad quality). A forward fill per definition gives the raw condition after every sample; only the
definitions whose raw condition changes go through Python (to place the on/off delays exactly), and a last
vectorised pass over all definitions activates/clears those whose delay ran out by the tag's clock.

Semantics (timestamps are the samples'; ``clock`` of a tag = its newest sample, or the last ``advance``):

- above (hi/hihi): on when ``v > limit``, off when ``v <= limit - deadband``; below (lo/lolo): on when
  ``v < limit``, off when ``v >= limit + deadband``; deviation/rate: on when ``|x| > limit``, off when
  ``|x| <= limit - deadband``; discrete: on when ``v == value``, off otherwise; comm: on when the quality is
  bad (< UNCERTAIN), off when it is not.
- A sample of bad quality or NaN decides nothing for the value alarms (the condition holds).
- deviation: ``x = pv - sp`` with the newest good value of the other tag (samples of either tag count).
- rate: ``x = (v - v_prev) / (t - t_prev)`` per second between consecutive good samples of the tag.
- The condition must hold ``on_delay`` (``off_delay``) from the sample that raised (cleared) it: the alarm
  activates at ``since + delay`` when no sample contradicted it before (``since + delay <= next change``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plantlink.engines.alarms.compiled import ABOVE, BELOW, COMM, DEVIATION, DISCRETE, RATE, Compiled, TagIndex, expand
from plantlink.samples import Quality

_NEVER = np.iinfo(np.int64).min // 4


@dataclass(frozen=True)
class Changes:
    """Condition changes (after delays), in time order: definition, instant, new condition, value."""

    index: np.ndarray  # int64
    ts_us: np.ndarray  # int64
    active: np.ndarray  # bool
    value: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.index.size)


class Evaluator:
    def __init__(self, c: Compiled):
        self.c = c
        n, t = c.size, len(c.tag_paths)
        self.raw = np.zeros(n, dtype=bool)
        self.raw_since = np.full(n, _NEVER, dtype=np.int64)
        self.raw_value = np.full(n, np.nan)
        self.active = np.zeros(n, dtype=bool)
        self.last_val = np.full(t, np.nan)
        self.last_ts = np.full(t, _NEVER, dtype=np.int64)
        self.clock = np.full(t, _NEVER, dtype=np.int64)
        self.index: TagIndex | None = None

    def restore(self, i: int, active: bool, now_us: int) -> None:
        """An alarm known active (e.g. before a restart): its condition is assumed to hold since ``now_us``."""
        self.raw[i] = self.active[i] = active
        self.raw_since[i] = now_us

    # -- batches --------------------------------------------------------------------------------------
    def process(self, ids: np.ndarray, ts: np.ndarray, vals: np.ndarray, qual: np.ndarray) -> Changes:
        assert self.index is not None, "bind tag ids first"
        rows, tags = self.index.rows_to_tags(ids)
        if rows.size == 0:
            return _empty()
        order = np.lexsort((ts[rows], tags))
        rows, tags = rows[order], tags[order]
        t, v, q = ts[rows].astype(np.int64), vals[rows].astype(np.float64), qual[rows]
        good = (q >= Quality.UNCERTAIN) & np.isfinite(v)
        rate = self._rates(tags, t, v, good)
        sp_tag_rows = self._update_tags(tags, t, v, good)
        prow, pdef, x, on, off = self._pairs(tags, v, good, q, rate, sp_tag_rows)
        ev_idx, ev_ts, ev_act, ev_val = self._raw_changes(prow, pdef, t, x, on, off)
        np.maximum.at(self.clock, tags, t)
        mi, mt, ma, mv = self._mature()
        return changes(ev_idx + mi, ev_ts + mt, ev_act + ma, ev_val + mv)

    def advance(self, now_us: int) -> Changes:
        """Move every tag's clock to ``now_us`` (wall time) and apply the delays that ran out."""
        np.maximum(self.clock, now_us, out=self.clock)
        mi, mt, ma, mv = self._mature()
        return changes(mi, mt, ma, mv)

    def _rates(self, tags: np.ndarray, t: np.ndarray, v: np.ndarray, good: np.ndarray) -> np.ndarray:
        n = tags.size
        ar = np.arange(n)
        gidx = np.where(good, ar, -1)
        last_good = np.maximum.accumulate(gidx)
        prev = np.empty(n, dtype=np.int64)
        prev[0] = -1
        prev[1:] = last_good[:-1]
        first = np.ones(n, dtype=bool)
        first[1:] = tags[1:] != tags[:-1]
        gstart = np.maximum.accumulate(np.where(first, ar, 0))
        in_batch = prev >= gstart
        pv = np.where(in_batch, v[np.maximum(prev, 0)], self.last_val[tags])
        pt = np.where(in_batch, t[np.maximum(prev, 0)], self.last_ts[tags])
        dt = (t - pt) / 1e6
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(good & (pt > _NEVER) & (dt > 0), (v - pv) / dt, np.nan)
        return rate

    def _update_tags(self, tags: np.ndarray, t: np.ndarray, v: np.ndarray, good: np.ndarray) -> np.ndarray:
        """Keep each tag's newest good value; returns the rows of tags that are some deviation's setpoint."""
        g = np.flatnonzero(good)
        if g.size:
            last = np.ones(g.size, dtype=bool)
            last[:-1] = tags[g[1:]] != tags[g[:-1]]
            sel = g[last]
            newer = t[sel] >= self.last_ts[tags[sel]]
            sel = sel[newer]
            self.last_val[tags[sel]] = v[sel]
            self.last_ts[tags[sel]] = t[sel]
        assert self.index is not None
        has_sp = self.index.sp_start[tags + 1] > self.index.sp_start[tags]
        return np.flatnonzero(has_sp)

    def _pairs(self, tags: np.ndarray, v: np.ndarray, good: np.ndarray, q: np.ndarray, rate: np.ndarray,
               sp_rows: np.ndarray) -> tuple[np.ndarray, ...]:
        c, ix = self.c, self.index
        assert ix is not None
        prow, pdef = expand(ix.start, ix.by_tag, tags)
        srow, sdef = expand(ix.sp_start, ix.sp_by_tag, tags[sp_rows])
        srow = sp_rows[srow]
        kind = c.kind[pdef]
        x = v[prow].copy()
        dev = kind == DEVIATION
        x[dev] = v[prow[dev]] - self.last_val[c.sp_of[pdef[dev]]]
        is_rate = kind == RATE
        x[is_rate] = rate[prow[is_rate]]
        ok = good[prow] & np.isfinite(x)
        # a setpoint sample re-evaluates the deviation with the process value's newest good value
        sx = self.last_val[c.tag_of[sdef]] - v[srow]
        sok = good[srow] & np.isfinite(sx)
        prow, pdef = np.concatenate([prow, srow]), np.concatenate([pdef, sdef])
        x, ok, kind = np.concatenate([x, sx]), np.concatenate([ok, sok]), c.kind[pdef]
        lim, db = c.limit[pdef], c.deadband[pdef]
        ax = np.abs(x)
        which = [kind == ABOVE, kind == BELOW, kind == DISCRETE]
        trig = c.trigger[pdef]
        on = np.select(which, [x > lim, x < lim, x == trig], ax > lim)
        off = np.select(which, [x <= lim - db, x >= lim + db, x != trig], ax <= lim - db)
        on &= ok
        off &= ok
        comm = kind == COMM
        bad = q[prow] < Quality.UNCERTAIN
        on[comm], off[comm] = bad[comm], ~bad[comm]
        return prow, pdef, x, on, off

    def _raw_changes(self, prow: np.ndarray, pdef: np.ndarray, t: np.ndarray, x: np.ndarray, on: np.ndarray,
                     off: np.ndarray) -> tuple[list[int], list[int], list[bool], list[float]]:
        decisive = on | off
        if not decisive.any():
            return [], [], [], []
        keep = np.flatnonzero(decisive)
        prow, pdef, x, on = prow[keep], pdef[keep], x[keep], on[keep]
        pt = t[prow]
        order = np.lexsort((pt, pdef))
        pdef, pt, x, on = pdef[order], pt[order], x[order], on[order]
        prev = np.empty(on.size, dtype=bool)
        prev[1:] = on[:-1]
        first = np.ones(on.size, dtype=bool)
        first[1:] = pdef[1:] != pdef[:-1]
        prev[first] = self.raw[pdef[first]]
        changed = np.flatnonzero(on != prev)
        return self._place(pdef[changed].tolist(), pt[changed].tolist(), on[changed].tolist(), x[changed].tolist())

    def _place(self, defs: list[int], ts: list[int], news: list[bool],
               xs: list[float]) -> tuple[list[int], list[int], list[bool], list[float]]:
        """The few raw changes, in (definition, time) order: a pending delay that ran out before the next
        change takes effect at its instant; then the new raw condition starts its own delay."""
        out_i: list[int] = []
        out_t: list[int] = []
        out_a: list[bool] = []
        out_v: list[float] = []
        raw, since, active, rv = self.raw, self.raw_since, self.active, self.raw_value
        on_us, off_us = self.c.on_us, self.c.off_us
        for d, t, new, x in zip(defs, ts, news, xs, strict=True):
            cur = bool(raw[d])
            if cur != active[d]:
                due = int(since[d]) + int(on_us[d] if cur else off_us[d])
                if due <= t:
                    active[d] = cur
                    out_i.append(d)
                    out_t.append(due)
                    out_a.append(cur)
                    out_v.append(float(rv[d]))
            raw[d], since[d], rv[d] = new, t, x
        return out_i, out_t, out_a, out_v

    def _mature(self) -> tuple[list[int], list[int], list[bool], list[float]]:
        pending = np.flatnonzero(self.raw != self.active)
        if pending.size == 0:
            return [], [], [], []
        raw = self.raw[pending]
        due = self.raw_since[pending] + np.where(raw, self.c.on_us[pending], self.c.off_us[pending])
        clk = self.clock[self.c.tag_of[pending]]
        sp = self.c.sp_of[pending]
        has = sp >= 0  # a deviation's clock also runs on its setpoint's samples
        clk[has] = np.maximum(clk[has], self.clock[sp[has]])
        ripe = due <= clk
        idx = pending[ripe]
        if idx.size == 0:
            return [], [], [], []
        self.active[idx] = self.raw[idx]
        return idx.tolist(), due[ripe].tolist(), self.raw[idx].tolist(), self.raw_value[idx].tolist()


def _empty() -> Changes:
    return Changes(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0))


def changes(i: list[int], t: list[int], a: list[bool], v: list[float]) -> Changes:
    if not i:
        return _empty()
    ts = np.asarray(t, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    return Changes(np.asarray(i, np.int64)[order], ts[order], np.asarray(a, bool)[order],
                   np.asarray(v, np.float64)[order])
