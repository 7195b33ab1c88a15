"""Opening a DuckDB historian store and serving the first latest-value query, in a fresh process.

    .venv/bin/python bench/historian_open.py [--tags 1000 --instants 3000 --runs 5 --dir /tmp/x]

Builds a store of ``--tags`` tags x ``--instants`` samples (1 s apart: one day partition), closes it, then times
``open()`` + ``latest(all tags)`` in a new Python process per run (imports excluded). For comparison it also
times the same on a copy whose persisted latest tables were dropped, so the open rebuilds them from a scan
(what every open did before).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OPEN = """
import sys, time
from plantlink.historian.duckdb import DuckDBHistorian
t = time.perf_counter()
h = DuckDBHistorian(sys.argv[1]); h.open()
ids = sorted(int(i) for i in h._types)
rows = h.latest(ids)
print((time.perf_counter() - t) * 1000, rows.num_rows - rows.column("ts").null_count)
h.close()
"""


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def build(path: Path, tags: int, instants: int) -> None:
    from plantlink.historian import TagMeta
    from plantlink.historian.duckdb import DuckDBHistorian
    from plantlink.samples import Quality, numeric_batch

    t0 = 1_772_409_600_000_000
    rng = np.random.default_rng(3)
    with DuckDBHistorian(path) as h:
        ids = np.array(list(h.register_tags([TagMeta(f"m{i // 20}/t{i % 20}") for i in range(tags)]).values()))
        step = 200
        for k in range(0, instants, step):
            n = min(step, instants - k)
            ts = t0 + np.repeat(np.arange(k, k + n, dtype=np.int64), tags) * 1_000_000
            h.write(numeric_batch(np.tile(ids, n), ts, rng.normal(size=n * tags), int(Quality.GOOD)))
        h.flush()


def time_open(path: Path, runs: int) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", OPEN, str(path)], check=True, capture_output=True, text=True)
        ms, n = out.stdout.split()
        times.append(float(ms))
        found = int(n)
    return statistics.median(times), found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tags", type=int, default=1000)
    p.add_argument("--instants", type=int, default=3000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dir")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = Path(d) / "historian.duckdb"
        build(path, args.tags, args.instants)
        samples = args.tags * args.instants
        ms, found = time_open(path, args.runs)
        emit("historian_open_first_latest_ms", ms, "ms", target="< 100", tags=args.tags, samples=samples,
             tags_with_latest=found, runs=args.runs)
        import duckdb

        old = Path(d) / "old.duckdb"
        shutil.copy(path, old)
        con = duckdb.connect(str(old))
        con.execute("DROP TABLE latest")
        con.execute("DROP TABLE stored_max")
        con.close()
        ms_old = []
        for _ in range(args.runs):  # each open rebuilds (the copy is restored each time)
            run = Path(d) / "run.duckdb"
            shutil.copy(old, run)
            ms_old.append(time_open(run, 1)[0])
        emit("historian_open_first_latest_rebuild_ms", statistics.median(ms_old), "ms", tags=args.tags,
             samples=samples)
        emit("historian_open_first_latest_ratio", statistics.median(ms_old) / ms, "ratio")


if __name__ == "__main__":
    main()
