"""Query shapes on a compacted store with its rollup pyramid built, and how time and size scale with range.

Fills a store with ``--tags`` tags at 1 Hz (``historian_size``'s random walk, 2 decimals) for ``--days`` days
through ``write()``, then runs the maintenance pass once (``build_rollups``: 1-hour and 1-day rollups, then
the closed days compacted) and times, medians of ``--runs``:

* ``downsample``: one tag over the last 7 days (or all days if fewer) to 1,000 points (MinMaxLTTB on raw);
* ``aggregate``: all 7 aggregates of 100 tags over the last day at 10 s, 7 s, 90 s (raw samples), 1 min, 5 min
  and 15 min (the pyramid), and at 10 s and 7 s over one more day written after the maintenance pass
  (``.appended``: not compacted, one sorted run per flush of the historian's default size);
* ``trend``: one tag over the whole range at 1 day and at 1 hour (from the pyramid), the year projection
  scales rows linearly (a year = 365 day rows, 8,760 hour rows per tag);
* sizes: used blocks after a checkpoint, per sample.

    .venv/bin/python bench/historian_pyramid.py --tags 100 --days 30
    .venv/bin/python bench/historian_pyramid.py --tags 100 --days 7 --keep --dir /tmp/pyr   # build once, reuse
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from historian_size import DAY, T0, emit, fill, generator, log, used_bytes
from plantlink.historian.duckdb import DuckDBHistorian

S = 1_000_000


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out), out[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", type=int, default=100)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--flush-rows", type=int, default=2_000_000)
    p.add_argument("--dir", type=Path, default=Path("/tmp/plantlink-bench-historian-pyramid"))
    p.add_argument("--keep", action="store_true",
                   help="keep the store in --dir, and reuse one a former --keep run left there (same --tags, --days)")
    p.add_argument("--resume", action="store_true",
                   help="a store in --dir that a former run filled (same --tags, --days) but did not maintain (it "
                        "stopped or failed in the maintenance pass): run the pass and the queries on it")
    a = p.parse_args()
    path = a.dir / "h.duckdb"
    label = f"{a.tags}tags_{a.days}d"
    end = T0 + a.days * DAY
    if a.resume:
        ids = maintain(path, a.tags * a.days * 86_400, a.days, label)
        log(f"maintained {path}")
    elif a.keep and path.exists():
        with DuckDBHistorian(path) as h:
            ids = h.tags().column("tag_id").to_numpy().astype(np.uint32)
        log(f"reusing {path}")
    else:
        ids, n = build(path, a.tags, a.days, a.flush_rows, label)
        log(f"store {path}: {n:,} samples")
    rng = np.random.default_rng(3)
    with DuckDBHistorian(path) as h:
        one = [int(x) for x in rng.choice(ids, size=a.runs)]
        span = min(7, a.days)
        it = iter(one)
        med, first = timed(lambda: h.downsample(next(it), end - span * DAY, end, 1000), a.runs)
        emit(f"historian.downsample_1_tag_{span}d_to_1000.{label}", med, "ms", "<= 20", first_run=round(first, 2),
             points_in=span * 86_400)
        width = min(100, len(ids))
        day_ranges = (("", end - DAY, INTERVALS), (".appended", end, (10 * S, 7 * S)))
        for kind, lo, intervals in day_ranges:  # the last compacted day; the day after it, in appended order
            for interval in intervals:
                starts = iter(int(x) for x in rng.integers(0, len(ids) - width + 1, size=a.runs))
                med, first = timed(lambda i=interval, st=starts, t0=lo: h.aggregate(  # type: ignore[misc]
                    ids[(s := next(st)):s + width].tolist(), t0, t0 + DAY, i), a.runs)
                emit(f"historian.aggregate_{_name(interval)}_{width}_tags_1d{kind}.{label}", med, "ms", "<= 100",
                     first_run=round(first, 2))
        for interval, name in ((DAY, "1d"), (3600 * S, "1h")):
            it = iter(one)
            med, first = timed(lambda i=interval, t1=it: h.aggregate([next(t1)], T0, end, i), a.runs)  # type: ignore[misc]
            emit(f"historian.trend_1_tag_{a.days}d_at_{name}.{label}", med, "ms", "<= 100",
                 first_run=round(first, 2), rows=a.days * DAY // interval)
    if not a.keep:
        shutil.rmtree(a.dir, ignore_errors=True)


#: The aggregate intervals timed over the last compacted day: 1 minute and coarser read the pyramid, the others
#: (not whole minutes) the raw samples.
INTERVALS = (10 * S, 7 * S, 90 * S, 60 * S, 300 * S, 900 * S)


def _name(interval: int) -> str:
    sec = interval // S
    return f"{sec // 60}min" if sec % 60 == 0 else f"{sec}s"


def append_day(h: DuckDBHistorian, ids: np.ndarray, day: int) -> None:
    """Day ``day`` (from T0) through ``write()`` with the historian's own flush size, not compacted: one
    sorted run per flush, as the current day of a running store."""
    walk = generator("walk", len(ids), 1.0)
    per = max(1, 100_000 // len(ids))
    for s0 in range(day * 86_400, (day + 1) * 86_400, per):
        h.write(walk.batch(ids, s0, min(per, (day + 1) * 86_400 - s0)))
    h.flush()


def build(path: Path, tags: int, days: int, flush_rows: int, label: str) -> tuple[np.ndarray, int]:
    """Fill a new store through ``write()``, then one maintenance pass (rollups, compaction)."""
    shutil.rmtree(path.parent, ignore_errors=True)
    path.parent.mkdir(parents=True)
    t = time.perf_counter()
    with DuckDBHistorian(path, flush_rows=flush_rows) as h:
        ids = fill(h, tags, 1.0, days, 100_000)
        n = h.samples_stored
    fill_s = time.perf_counter() - t
    emit(f"historian.pyramid.ingest.{label}", n / fill_s, "samples/s", samples=n, seconds=round(fill_s, 1))
    maintain(path, n, days, label)
    return ids, n


def maintain(path: Path, n: int, days: int, label: str) -> np.ndarray:
    """One maintenance pass over a filled store (rollups, compaction), its size, then a day appended."""
    end = T0 + days * DAY
    with DuckDBHistorian(path) as h:
        t = time.perf_counter()
        h.build_rollups(end + DAY)
        emit(f"historian.pyramid.maintenance.{label}", time.perf_counter() - t, "s",
             note="1-hour and 1-day rollups built, every day compacted")
    size = used_bytes(path)
    emit(f"historian.pyramid.bytes_per_sample.total.{label}", size / n, "B/sample", samples=n, bytes=size,
         file_bytes_per_sample=round(path.stat().st_size / n, 3))
    with DuckDBHistorian(path) as h:
        ids: np.ndarray = h.tags().column("tag_id").to_numpy().astype(np.uint32)
        append_day(h, ids, days)
    return ids


if __name__ == "__main__":
    main()
