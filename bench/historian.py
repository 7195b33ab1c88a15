"""Benchmark of the embedded DuckDB historian: ingest a synthetic fleet, then time the typical queries.

    .venv/bin/python bench/historian.py [--machines 1000 --tags 20 --days 7 --period 100 --dir /tmp/x] [--quick]

Each machine's tags are sampled every ``--period`` seconds (each machine with its own phase) and written
through ``Historian.write`` in batches of about ``--batch-rows`` rows, one batch per few sample instants, like
a fleet of connectors. Prints one JSON line per figure: {"name", "value", "unit", "target"}; progress goes
to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from plantlink.historian import TagMeta, open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch

S = 1_000_000
DAY = 86_400 * S


def emit(name: str, value: float, unit: str, target: str | None = None, **extra: object) -> None:
    line: dict[str, object] = {"name": name, "value": round(value, 3), "unit": unit}
    if target is not None:
        line["target"] = target
    line.update(extra)
    print(json.dumps(line), flush=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Fleet:
    """Synthetic machines: per tag a level, a slow cycle, noise and now and then a bad-quality sample."""

    def __init__(self, machines: int, tags: int, period_s: float, t0: int, seed: int = 42):
        rng = np.random.default_rng(seed)
        self.n = machines * tags
        self.period = int(period_s * S)
        self.t0 = t0
        self.phase = np.repeat(rng.integers(0, self.period, machines), tags)  # each machine polls on its own
        self.level = rng.uniform(10, 500, self.n)
        self.amp = self.level * rng.uniform(0.01, 0.2, self.n)
        self.cycle = rng.uniform(600, 7200, self.n) * S
        self.noise = self.amp * 0.05
        self.rng = rng

    def batch(self, ids: np.ndarray, step0: int, steps: int):  # type: ignore[no-untyped-def]
        k = np.arange(step0, step0 + steps, dtype=np.int64)[:, None]
        ts = self.t0 + k * self.period + self.phase[None, :]
        value = (
            self.level + self.amp * np.sin(2 * np.pi * ts / self.cycle) + self.rng.normal(size=ts.shape) * self.noise
        )
        quality = np.where(self.rng.random(ts.shape) < 0.001, Quality.BAD, Quality.GOOD).astype(np.uint8)
        tag = np.broadcast_to(ids[None, :], ts.shape)
        return numeric_batch(tag.ravel(), ts.ravel(), np.round(value, 3).ravel(), quality.ravel())


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def ingest(h: DuckDBHistorian, fleet: Fleet, ids: np.ndarray, total_steps: int, batch_rows: int) -> None:
    steps_per_batch = max(1, batch_rows // fleet.n)
    in_store = gen = 0.0
    t_wall = time.perf_counter()
    next_log = t_wall + 10
    for s0 in range(0, total_steps, steps_per_batch):
        t = time.perf_counter()
        batch = fleet.batch(ids, s0, min(steps_per_batch, total_steps - s0))
        t2 = time.perf_counter()
        h.write(batch)
        in_store += time.perf_counter() - t2
        gen += t2 - t
        if time.perf_counter() > next_log:
            log(f"  ingested {h.samples_stored:,} samples, {s0 / total_steps:.0%}")
            next_log += 10
    t = time.perf_counter()
    h.flush()
    in_store += time.perf_counter() - t
    n = h.samples_stored
    wall = time.perf_counter() - t_wall
    emit("historian.ingest_rate", n / in_store, "samples/s", ">= 2000000", samples=n, seconds=round(in_store, 2))
    emit("historian.ingest_rate_with_generation", n / wall, "samples/s", samples=n, seconds=round(wall, 2))
    emit("historian.data_generation_time", gen, "s")


def queries(h: DuckDBHistorian, ids: np.ndarray, t0: int, days: int, runs: int) -> None:
    rng = np.random.default_rng(1)
    end = t0 + days * DAY
    pick = [rng.choice(ids, size=min(1000, len(ids)), replace=False) for _ in range(runs)]
    it = iter(pick)
    lat = timed(lambda: h.latest(next(it).tolist()), runs)
    emit("historian.latest_1000_tags", statistics.median(lat), "ms", "<= 20", tags=len(pick[0]), max=round(max(lat), 3))
    one = [int(x) for x in rng.choice(ids, size=runs)]
    it2 = iter(one)
    ds = timed(lambda: h.downsample(next(it2), t0, end, n_out=1000), runs)
    n_pts = h.raw(one[0], t0, end, limit=10**9).num_rows
    emit(
        f"historian.downsample_1_tag_{days}d_to_1000",
        statistics.median(ds),
        "ms",
        "<= 100",
        points_in=n_pts,
        first_run=round(ds[0], 3),
    )
    width = min(100, len(ids))
    starts = [int(x) for x in rng.integers(0, len(ids) - width + 1, size=runs)]
    day0 = end - DAY
    it3 = iter(starts)
    ag = timed(lambda: h.aggregate(ids[(s := next(it3)) : s + width].tolist(), day0, end, 60 * S), runs)
    rows = h.aggregate(ids[:width].tolist(), day0, end, 60 * S).num_rows
    emit(
        "historian.aggregate_1m_100_tags_1d",
        statistics.median(ag),
        "ms",
        "<= 500",
        tags=width,
        rows=rows,
        first_run=round(ag[0], 3),
    )
    it4 = iter(one)
    rw = timed(lambda: h.raw(next(it4), day0, end), runs)
    emit("historian.raw_1_tag_1d", statistics.median(rw), "ms")
    it5 = iter(starts)
    ag10 = timed(lambda: h.aggregate(ids[(s := next(it5)) : s + 10].tolist(), day0, end, 10 * S), runs)
    emit("historian.aggregate_10s_10_tags_1d_from_raw", statistics.median(ag10), "ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--machines", type=int, default=1000)
    p.add_argument("--tags", type=int, default=20, help="tags per machine")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--period", type=float, default=100.0, help="seconds between two samples of a tag")
    p.add_argument("--batch-rows", type=int, default=20_000, help="about how many rows per write() batch")
    p.add_argument("--dir", type=Path, default=Path("/tmp/plantlink-bench-historian"))
    p.add_argument("--runs", type=int, default=10, help="repetitions per query figure")
    p.add_argument("--quick", action="store_true", help="smoke run: 100 machines x 20 tags x 1 day")
    p.add_argument("--keep", action="store_true", help="keep the store directory afterwards")
    a = p.parse_args()
    if a.quick:
        a.machines, a.days = 100, 1
    shutil.rmtree(a.dir, ignore_errors=True)
    path = a.dir / "historian.duckdb"
    t0 = (time.time_ns() // 1000 // DAY - a.days) * DAY
    total_steps = int(a.days * 86400 / a.period)
    n_tags = a.machines * a.tags
    log(f"{n_tags} tags, every {a.period} s, {a.days} days: {n_tags * total_steps:,} samples into {path}")
    h = open_historian("duckdb", path=path)
    assert isinstance(h, DuckDBHistorian)
    paths = [TagMeta(f"plant/m{m:04d}/t{k:02d}") for m in range(a.machines) for k in range(a.tags)]
    ids = np.array(list(h.register_tags(paths).values()), dtype=np.uint32)
    ingest(h, Fleet(a.machines, a.tags, a.period, t0), ids, total_steps, a.batch_rows)
    t = time.perf_counter()
    h.close()
    emit("historian.close", time.perf_counter() - t, "s")
    emit("historian.store_size", sum(f.stat().st_size for f in a.dir.iterdir()) / 2**20, "MiB")
    t = time.perf_counter()
    h = open_historian("duckdb", path=path)
    assert isinstance(h, DuckDBHistorian)
    emit("historian.reopen_with_latest_rebuild", (time.perf_counter() - t) * 1000, "ms")
    queries(h, ids, t0, a.days, a.runs)
    h.close()
    if not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
