"""The ClickHouse historian next to DuckDB on the same data: ingest rate, the three query figures and the
bytes on disk per sample.

    .venv/bin/python bench/historian_clickhouse.py [--machines 50 --tags 20 --days 7 --period 60]
        [--url chdb:///tmp/x | clickhouse://user:pw@host:8123] [--quick]

The fleet of ``bench/historian.py`` (each tag every ``--period`` seconds) plus one dense tag at 1 Hz (what
"one tag, 7 days, downsampled to 1,000 points" is about) is generated once and written through
``Historian.write`` into a fresh DuckDB store and a fresh ClickHouse database (the in-process engine by
default). Ingest rate = samples / time in ``write`` + the final ``flush``. Query figures are medians of
``--runs`` runs. ClickHouse's figures are taken as ingested and again after ``OPTIMIZE TABLE ... FINAL`` (its
parts merged, as a server does over time). One JSON line per figure; the ClickHouse/DuckDB ratios have unit
"ratio".
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
from typing import Any

import numpy as np
import pyarrow as pa

from historian import Fleet  # bench/historian.py (this script's directory is on sys.path)
from plantlink.historian import Historian, TagMeta, open_historian
from plantlink.samples import numeric_batch

S = 1_000_000
DAY = 86_400 * S
T0 = 1_772_409_600_000_000  # 2026-03-02 00:00 UTC


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def batches(fleet: Fleet, ids: np.ndarray, dense: int, days: int, batch_rows: int) -> list[pa.RecordBatch]:
    steps = days * DAY // fleet.period
    per = max(1, batch_rows // fleet.n)
    out = [fleet.batch(ids, s, min(per, steps - s)) for s in range(0, steps, per)]
    rng = np.random.default_rng(3)
    ts = T0 + np.arange(days * 86_400, dtype=np.int64) * S
    value = np.round(50 + 10 * np.sin(np.arange(len(ts)) / 3600) + rng.normal(0, 0.5, len(ts)), 3)
    for part in np.array_split(np.arange(len(ts)), max(1, len(ts) // batch_rows)):
        out.append(numeric_batch(np.full(len(part), dense), ts[part], value[part], 192))
    return out


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def ingest(h: Historian, data: list[pa.RecordBatch]) -> tuple[int, float]:
    t = time.perf_counter()
    for b in data:
        h.write(b)
    h.flush()
    return h.samples_stored, time.perf_counter() - t


def queries(h: Historian, ids: np.ndarray, dense: int, days: int, runs: int) -> dict[str, float]:
    end = T0 + days * DAY
    rng = np.random.default_rng(1)
    picks = [rng.choice(ids, size=min(1000, len(ids)), replace=False).tolist() for _ in range(runs)]
    it = iter(picks)
    latest = timed(lambda: h.latest(next(it)), runs)
    down = timed(lambda: h.downsample(dense, T0, end, n_out=1000), runs)
    width = min(100, len(ids))
    starts = iter(rng.integers(0, len(ids) - width + 1, size=runs).tolist())
    agg = timed(lambda: h.aggregate(ids[(s := next(starts)):s + width].tolist(), end - DAY, end, 60 * S), runs)
    return {"latest_1000_tags": statistics.median(latest), f"downsample_1_tag_{days}d_to_1000": statistics.median(down),
            "aggregate_1m_100_tags_1d": statistics.median(agg)}


def duckdb_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def clickhouse_bytes(h: Any, tables: tuple[str, ...]) -> int:
    names = ",".join(f"'{t}'" for t in tables)
    return int(h.client.command(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND "
                                f"database = '{h.lay.database}' AND table IN ({names})") or 0)


def run(args: argparse.Namespace) -> None:
    fleet = Fleet(args.machines, args.tags, args.period, T0)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    metas = [TagMeta(f"m{i // args.tags}/t{i % args.tags}") for i in range(fleet.n)] + [TagMeta("dense")]
    log("generating ...")
    duck = open_historian("duckdb", path=args.dir / "historian.duckdb")
    ids_map = duck.register_tags(metas)
    ids, dense = np.array([ids_map[m.path] for m in metas[:-1]]), ids_map["dense"]
    data = batches(fleet, ids, dense, args.days, args.batch_rows)
    log(f"{sum(b.num_rows for b in data):,} samples in {len(data)} batches; DuckDB ...")
    n, secs = ingest(duck, data)
    duck_rate = n / secs
    emit("historian.duckdb.ingest_rate", duck_rate, "samples/s", samples=n, seconds=round(secs, 2))
    figures = {"duckdb": queries(duck, ids, dense, args.days, args.runs)}
    duck.close()
    emit("historian.duckdb.bytes_per_sample", duckdb_bytes(args.dir / "historian.duckdb") / n, "bytes")
    del duck
    url = args.url or f"chdb://{args.dir / 'chdb'}"
    log(f"ClickHouse at {url} ...")
    ch: Any = open_historian("clickhouse", url=url, database="bench", create_database=True)
    assert ch.register_tags(metas) == ids_map
    n_ch, secs = ingest(ch, data)
    emit("historian.clickhouse.ingest_rate", n_ch / secs, "samples/s", samples=n_ch, seconds=round(secs, 2))
    emit("historian.clickhouse_vs_duckdb.ingest_rate", (n_ch / secs) / duck_rate, "ratio")
    figures["clickhouse"] = queries(ch, ids, dense, args.days, args.runs)
    raw_only = clickhouse_bytes(ch, ("raw",))
    every = clickhouse_bytes(ch, ("raw", "r1m", "r1h", "latest", "tags", "meta"))
    emit("historian.clickhouse.bytes_per_sample", every / n_ch, "bytes", raw_only=round(raw_only / n_ch, 3))
    for table in ("raw", "r1m", "r1h", "latest"):
        ch.client.command(f"OPTIMIZE TABLE {ch.lay.t(table)} FINAL")
    figures["clickhouse_merged"] = queries(ch, ids, dense, args.days, args.runs)
    raw_only = clickhouse_bytes(ch, ("raw",))
    every = clickhouse_bytes(ch, ("raw", "r1m", "r1h", "latest", "tags", "meta"))
    emit("historian.clickhouse_merged.bytes_per_sample", every / n_ch, "bytes", raw_only=round(raw_only / n_ch, 3))
    ch.close()
    for backend in ("duckdb", "clickhouse", "clickhouse_merged"):
        for name, ms in figures[backend].items():
            emit(f"historian.{backend}.{name}", ms, "ms")
    for backend in ("clickhouse", "clickhouse_merged"):
        for name, ms in figures[backend].items():
            emit(f"historian.{backend}_vs_duckdb.{name}", ms / figures["duckdb"][name], "ratio")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--machines", type=int, default=50)
    p.add_argument("--tags", type=int, default=20, help="tags per machine")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--period", type=float, default=60.0, help="seconds between two samples of a fleet tag")
    p.add_argument("--batch-rows", type=int, default=20_000, help="about how many rows per write() batch")
    p.add_argument("--dir", type=Path, default=Path("/tmp/plantlink-bench-clickhouse"))
    p.add_argument("--url", default=None, help="a ClickHouse server (default: the in-process engine in --dir)")
    p.add_argument("--runs", type=int, default=10, help="repetitions per query figure")
    p.add_argument("--quick", action="store_true", help="smoke run: 10 machines x 20 tags x 1 day")
    p.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    args = p.parse_args()
    if args.quick:
        args.machines, args.days, args.runs = 10, 1, 3
    run(args)


if __name__ == "__main__":
    main()
