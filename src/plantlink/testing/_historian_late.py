"""The historian suite's late-data part: an hour backfilled after an outage (and a device whose clock jumped
back) is stored, and every aggregate over it — minutes, hours, odd intervals, before and after the backend's
rollups are rebuilt — equals what numpy computes from the raw samples, independently of any backend."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from plantlink.historian.base import Historian, TagMeta
from plantlink.samples import numeric_batch
from plantlink.testing._historian_base import BAD, GOOD, T0, HistorianBase, M, S

H = 60 * M
TAGS_N, STEP, HOURS = 30, 10 * S, 4
OUTAGE = (T0 + H, T0 + 2 * H)  # the edge was cut off for this hour; it sends it afterwards


def numpy_aggregates(ts: np.ndarray, v: np.ndarray, q: np.ndarray, start: int, end: int,
                     interval: int) -> dict[int, dict[str, float]]:
    """bucket -> aggregates of one tag's samples (any order), with numpy: bad and non-finite samples ignored,
    ``twa`` holding each value until the next sample, the value before a bucket carried in."""
    good = (q >= 64) & np.isfinite(v)
    order = np.argsort(ts[good], kind="stable")
    ts, v = ts[good][order], v[good][order]
    bucket = ts - ts % interval
    out: dict[int, dict[str, float]] = {}
    for b in np.unique(bucket[(ts >= start) & (ts < end)]).tolist():
        bs, be = max(b, start), min(b + interval, end)
        i = np.flatnonzero((ts >= bs) & (ts < be))
        nxt = np.minimum(np.append(ts[i[1:]], be), be)
        integral = float(np.sum(v[i] * (nxt - ts[i])))
        t_from = int(ts[i[0]])
        if i[0] > 0:  # carried in from the sample before the bucket
            integral += float(v[i[0] - 1] * (ts[i[0]] - bs))
            t_from = bs
        out[b] = {"min": float(v[i].min()), "max": float(v[i].max()), "mean": float(v[i].mean()),
                  "first": float(v[i[0]]), "last": float(v[i[-1]]), "count": float(len(i)),
                  "twa": integral / (be - t_from)}
    return out


class LateDataContract(HistorianBase):
    def _fleet(self, h: Historian) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ids = np.array(list(h.register_tags([TagMeta(f"late/t{i}") for i in range(TAGS_N)]).values()))
        rng = np.random.default_rng(15)
        instants = np.arange(T0, T0 + HOURS * H, STEP, dtype=np.int64)
        tag = np.tile(ids, len(instants))
        ts = np.repeat(instants, TAGS_N) + rng.integers(0, STEP // 2, len(tag))  # each sample a little late
        value = np.round(rng.normal(50, 10, len(tag)), 3)
        quality = np.where(rng.random(len(tag)) < 0.05, BAD, GOOD)
        return tag, ts, value, quality

    def _write(self, h: Historian, tag: np.ndarray, ts: np.ndarray, v: np.ndarray, q: np.ndarray,
               parts: int) -> None:
        for i in np.array_split(np.arange(len(tag)), parts):
            h.write(numeric_batch(tag[i], ts[i], v[i], q[i]))
            h.flush()

    def test_a_late_backfill_corrects_every_rollup(self, hist: Historian) -> None:
        tag, ts, value, quality = self._fleet(hist)
        late = (ts >= OUTAGE[0]) & (ts < OUTAGE[1])
        live = ~late
        self._write(hist, tag[live], ts[live], value[live], quality[live], 6)  # in time order
        hist.build_rollups(T0 + HOURS * H + 5 * M)  # hours already rolled up when the backfill comes
        self.check(hist, tag[live], ts[live], value[live], quality[live])
        for interval in (M, H):  # the gap itself: no bucket (the value before it carries into none)
            assert hist.aggregate(np.unique(tag).tolist(), *OUTAGE, interval).num_rows == 0
        back = np.flatnonzero(late)
        self._write(hist, tag[back], ts[back], value[back], quality[back], 4)  # the outage hour, after
        jumped = np.flatnonzero((tag == tag[0]) & (ts >= T0 + 3 * H))[:50]  # a clock that jumped back 2 h 30 min
        jump = (tag[jumped], ts[jumped] - 150 * M + 1, value[jumped] + 1000.0, quality[jumped])
        hist.write(numeric_batch(*jump))
        hist.flush()
        all_ = [np.concatenate([a, b]) for a, b in zip((tag, ts, value, quality), jump, strict=True)]
        assert hist.aggregate([int(tag[0])], T0, T0 + HOURS * H, HOURS * H, ["count"]).column(
            "count").to_pylist() == [int(np.sum((all_[0] == tag[0]) & (all_[3] >= 64)))]
        self.check(hist, *all_)  # minutes recomputed, built hours read from minutes again
        hist.build_rollups(T0 + HOURS * H + 5 * M)
        self.check(hist, *all_)  # hours rebuilt

    def check(self, h: Historian, tag: np.ndarray, ts: np.ndarray, v: np.ndarray, q: np.ndarray) -> None:
        ids = np.unique(tag)
        for interval, start, end in ((M, T0, T0 + HOURS * H), (H, T0, T0 + HOURS * H), (2 * H, T0, T0 + HOURS * H),
                                     (7 * M, T0 + 13 * S, T0 + 3 * H + 5 * S)):
            got = h.aggregate(ids.tolist(), start, end, interval)
            by = _rows(got)
            for t in ids[:: max(1, len(ids) // 6)].tolist():  # a few tags, every bucket and aggregate
                on = tag == t
                ref = numpy_aggregates(ts[on], v[on], q[on], start, end, interval)
                mine = {b: r for (tt, b), r in by.items() if tt == t}
                assert sorted(mine) == sorted(ref), (t, interval)
                for b, expect in ref.items():
                    for name, x in expect.items():
                        assert np.isclose(mine[b][name], x, rtol=1e-9, atol=1e-9), (t, interval, b, name)


def _rows(t: pa.Table) -> dict[tuple[int, int], dict[str, float]]:
    bucket = t.column("bucket").cast(pa.int64()).to_pylist()
    rows = t.to_pylist()
    return {(int(r["tag_id"]), int(b)): r for r, b in zip(rows, bucket, strict=True)}
