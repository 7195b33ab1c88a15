"""A late backfill into a DuckDB historian that holds days of data, and the query figures during it.

    .venv/bin/python bench/historian_backfill.py [--tags 1000 --days 2 --period 10 --dir /tmp/x]

Builds a store of ``--tags`` tags sampled every ``--period`` seconds for ``--days`` days, except one hour in
the middle of the last day (an edge's outage), with the 1-hour rollups built. Then the edge backfills that hour
(``--tags`` x 3600 / ``--period`` samples, in batches of 10 s of data, flushed every 100,000 rows like a
runtime) while another thread queries in a loop: ``latest`` of all tags, a 1-minute aggregate of 10 tags over
the backfilled hour, and a ``downsample`` of one tag over the last day. Reports the backfill's time and rate,
each query's median and p95 during the backfill and at rest, and a check that the backfilled hour's 1-minute
and 1-hour aggregates count every sample. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from plantlink.historian import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch

S = 1_000_000
H = 3600 * S
DAY = 24 * H
T0 = 1_772_409_600_000_000


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def batches(ids: np.ndarray, start: int, end: int, period: int, step_s: int) -> list[tuple[np.ndarray, ...]]:
    out = []
    rng = np.random.default_rng(start % 997)
    for t in range(start, end, step_s * S):
        instants = np.arange(t, min(t + step_s * S, end), period, dtype=np.int64)
        tag = np.tile(ids, len(instants))
        out.append((tag, np.repeat(instants, len(ids)), rng.normal(100, 10, len(tag))))
    return out


def build(h: DuckDBHistorian, ids: np.ndarray, days: int, period: int, outage: tuple[int, int]) -> int:
    n = 0
    for d in range(days):
        for lo, hi in ((T0 + d * DAY, min(T0 + (d + 1) * DAY, outage[0])), (max(T0 + d * DAY, outage[1]),
                                                                            T0 + (d + 1) * DAY)):
            if lo >= hi:
                continue
            for tag, ts, v in batches(ids, lo, hi, period, 600):
                h.write(numeric_batch(tag, ts, v, int(Quality.GOOD)))
                n += len(tag)
        h.flush()
    return n


class Prober(threading.Thread):
    def __init__(self, queries: dict[str, Callable[[], object]]):
        super().__init__(daemon=True)
        self.queries = queries
        self.times: dict[str, list[float]] = {k: [] for k in queries}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, q in self.queries.items():
                t = time.perf_counter()
                q()
                self.times[name].append((time.perf_counter() - t) * 1000)
            time.sleep(0.02)


def report(prober: Prober, when: str) -> None:
    for name, ts in prober.times.items():
        if ts:
            emit(f"historian_{name}_ms_{when}", statistics.median(ts), "ms", runs=len(ts),
                 p95=round(sorted(ts)[int(0.95 * (len(ts) - 1))], 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tags", type=int, default=1000)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--period", type=float, default=10)
    p.add_argument("--dir")
    args = p.parse_args()
    period = int(args.period * S)
    end = T0 + args.days * DAY
    outage = (end - 6 * H, end - 5 * H)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        h = DuckDBHistorian(Path(d) / "historian.duckdb", flush_rows=100_000)
        h.open()
        ids = np.array(list(h.register_tags([TagMeta(f"m{i // 20}/t{i % 20}") for i in range(args.tags)]).values()))
        t = time.perf_counter()
        stored = build(h, ids, args.days, period, outage)
        h.build_rollups(end + H)
        emit("historian_backfill_store_built_s", time.perf_counter() - t, "s", samples=stored, days=args.days)
        all_ids, ten = ids.tolist(), ids[:10].tolist()
        queries: dict[str, Callable[[], object]] = {
            "latest_all": lambda: h.latest(all_ids),
            "aggregate_1m_10_tags_1h": lambda: h.aggregate(ten, outage[0], outage[1], 60 * S),
            "downsample_1_tag_1d": lambda: h.downsample(int(ids[0]), end - DAY, end, 1000),
        }
        rest = Prober(queries)
        rest.start()
        time.sleep(5)
        rest.stop.set()
        rest.join()
        report(rest, "at_rest")
        prober = Prober(queries)
        prober.start()
        t = time.perf_counter()
        late = 0
        for tag, ts, v in batches(ids, outage[0], outage[1], period, 10):
            h.write(numeric_batch(tag, ts, v, int(Quality.GOOD)))
            late += len(tag)
        h.flush()
        took = time.perf_counter() - t
        prober.stop.set()
        prober.join()
        emit("historian_backfill_1h_s", took, "s", samples=late, tags=args.tags, store_days=args.days,
             store_samples=stored)
        emit("historian_backfill_rate", late / took, "samples/s")
        report(prober, "during_backfill")
        t = time.perf_counter()
        h.build_rollups(end + H)
        emit("historian_backfill_rebuild_hours_s", time.perf_counter() - t, "s")
        want = late // len(ids)
        per_min = h.aggregate(ten, outage[0], outage[1], 60 * S, ["count"]).column("count").to_numpy()
        per_hour = h.aggregate(ten, outage[0], outage[1], H, ["count"]).column("count").to_numpy()
        ok = int(per_min.sum()) == want * 10 and per_hour.tolist() == [want] * 10
        emit("historian_backfill_rollups_complete", float(ok), "bool")
        h.close()


if __name__ == "__main__":
    main()
