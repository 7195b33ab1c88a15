"""Bytes per sample of the DuckDB historian, raw and rollups apart, before and after compaction.

Data with realistic noise: ``dense`` = tags sampled at 1 Hz, ``sparse`` = tags sampled every 10 s; each tag a
random walk around its own level rounded to 2 decimals (a sensor with 3-4 significant digits), each tag with
its own phase (milliseconds), 0.1 % bad-quality samples. The store is written through ``Historian.write()``
with small flushes (``--flush-rows``), so a day is made of many appended chunks, as in a running plant.

Sizes are DuckDB's used blocks (256 KiB each) after a CHECKPOINT: the whole file, and a copy of it with the
rollup tables dropped (= raw); rollups = whole - raw. One JSON line per figure.

    .venv/bin/python bench/historian_size.py --tags 100 --period 1 --days 1
    .venv/bin/python bench/historian_size.py --tags 1000 --period 10 --days 1
    .venv/bin/python bench/historian_size.py --tags 1000 --period 10 --days 1 --sparse-minutes 30

``--sparse-minutes`` (else ``PLANTLINK_HISTORIAN_SPARSE_MINUTES``, else the default) is the store's
``sparse_minutes`` at compaction; when on, the figure names end in ``.sparse<N>``.

``--queries RUNS`` times reads instead: the same data compacted twice, with ``sparse_minutes`` (``--sparse-minutes``)
and with it off (0), hours not built, then aggregates of every tag over the first day at 1 min, 5 min and 1 h,
the two stores alternating, ``RUNS`` times each: the median in ms per store, their ratio and the load average.

    .venv/bin/python bench/historian_size.py --tags 100 --period 10 --days 1 --queries 15
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb
import numpy as np

from plantlink.historian.base import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian, settings
from plantlink.samples import Quality, numeric_batch

S = 1_000_000
DAY = 86_400 * S
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def emit(name: str, value: float, unit: str, target: str | None = None, **extra: object) -> None:
    line: dict[str, object] = {"name": name, "value": round(value, 3), "unit": unit}
    if target is not None:
        line["target"] = target
    line.update(extra)
    print(json.dumps(line), flush=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Walk:
    """Per tag a level and a random walk, rounded to 2 decimals; per tag a phase."""

    def __init__(self, tags: int, period_s: float, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.n = tags
        self.period = int(period_s * S)
        self.phase = self.rng.integers(0, 1000, tags) * 1000  # whole milliseconds
        self.level = self.rng.uniform(5, 200, tags)
        self.step = self.level * self.rng.uniform(0.0005, 0.003, tags)

    def batch(self, ids: np.ndarray, step0: int, steps: int):  # type: ignore[no-untyped-def]
        k = np.arange(step0, step0 + steps, dtype=np.int64)[:, None]
        ts = T0 + k * self.period + self.phase[None, :]
        walk = self.rng.normal(size=(steps, self.n)) * self.step
        value = self.level + np.cumsum(walk, axis=0)
        self.level = value[-1]
        quality = np.where(self.rng.random(ts.shape) < 0.001, Quality.BAD, Quality.GOOD).astype(np.uint8)
        tag = np.broadcast_to(ids[None, :], ts.shape)
        return numeric_batch(tag.ravel(), ts.ravel(), np.round(value, 2).ravel(), quality.ravel())


class Fleet:
    """Synthetic machines (the generator ``bench/historian.py`` used before its workload of issue 15 item 5):
    per tag a level, a slow cycle and white noise rounded to 3 decimals, each machine on its own phase."""

    def __init__(self, machines: int, tags: int, period_s: float, t0: int, seed: int = 42):
        rng = np.random.default_rng(seed)
        self.n = machines * tags
        self.period = int(period_s * S)
        self.t0 = t0
        self.phase = np.repeat(rng.integers(0, self.period, machines), tags)
        self.level = rng.uniform(10, 500, self.n)
        self.amp = self.level * rng.uniform(0.01, 0.2, self.n)
        self.cycle = rng.uniform(600, 7200, self.n) * S
        self.noise = self.amp * 0.05
        self.rng = rng

    def batch(self, ids: np.ndarray, step0: int, steps: int):  # type: ignore[no-untyped-def]
        k = np.arange(step0, step0 + steps, dtype=np.int64)[:, None]
        ts = self.t0 + k * self.period + self.phase[None, :]
        wave = self.amp * np.sin(2 * np.pi * ts / self.cycle)
        value = self.level + wave + self.rng.normal(size=ts.shape) * self.noise
        quality = np.where(self.rng.random(ts.shape) < 0.001, Quality.BAD, Quality.GOOD).astype(np.uint8)
        tag = np.broadcast_to(ids[None, :], ts.shape)
        return numeric_batch(tag.ravel(), ts.ravel(), np.round(value, 3).ravel(), quality.ravel())


def generator(data: str, tags: int, period_s: float) -> Walk | Fleet:
    """``walk`` (this module's random walk) or ``fleet`` (``Fleet``: level + slow cycle + white noise rounded
    to 3 decimals, each machine of 20 tags on its own phase)."""
    if data == "walk":
        return Walk(tags, period_s)
    return Fleet(max(1, tags // 20), min(tags, 20), period_s, T0)


def fill(h: DuckDBHistorian, tags: int, period_s: float, days: int, batch_rows: int, data: str = "walk"
         ) -> np.ndarray:
    ids = np.array(list(h.register_tags([TagMeta(f"site/m{i // 20}/t{i % 20}", "", "float")
                                         for i in range(tags)]).values()), dtype=np.uint32)
    walk = generator(data, tags, period_s)
    total = int(days * DAY // walk.period)
    per = max(1, batch_rows // tags)
    for s0 in range(0, total, per):
        h.write(walk.batch(ids, s0, min(per, total - s0)))
    h.flush()
    return ids


def used_bytes(path: Path) -> int:
    con = duckdb.connect(str(path))
    try:
        con.execute("CHECKPOINT")
        row = con.execute("SELECT used_blocks, block_size FROM pragma_database_size()").fetchone()
        assert row is not None
        return int(row[0]) * int(row[1])
    finally:
        con.close()


def sizes(path: Path) -> tuple[int, int]:
    """(raw bytes, rollup bytes): used blocks of the store, and of a copy without the rollup tables."""
    whole = used_bytes(path)
    copy = path.with_suffix(".raw-only.duckdb")
    shutil.copy(path, copy)
    con = duckdb.connect(str(copy))
    try:
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'r1%' "
                                   "OR table_name LIKE 'r10s%' OR table_name LIKE 'r1d%'").fetchall():
            con.execute(f"DROP TABLE {name}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    raw = used_bytes(copy)
    copy.unlink()
    return raw, whole - raw


def compression(path: Path) -> None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        name = con.execute("SELECT min(table_name) FROM duckdb_tables() WHERE table_name LIKE 'raw_d%'").fetchone()
        if not name or name[0] is None:
            return
        rows = con.execute(
            f"SELECT column_name, compression, count(*) AS segments, count(DISTINCT row_group_id) AS row_groups "
            f"FROM pragma_storage_info('{name[0]}') WHERE segment_type <> 'VALIDITY' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        for r in rows:
            log(f"  {name[0]} {r[0]}: {r[1]} in {r[2]} segments, {r[3]} row groups")
    finally:
        con.close()


def report(label: str, path: Path, n: int, target: str) -> None:
    raw, rollups = sizes(path)
    emit(f"historian.bytes_per_sample.raw.{label}", raw / n, "B/sample", target, samples=n, bytes=raw)
    emit(f"historian.bytes_per_sample.rollups.{label}", rollups / n, "B/sample", samples=n, bytes=rollups)
    emit(f"historian.bytes_per_sample.total.{label}", (raw + rollups) / n, "B/sample", samples=n)


def compacted_copy(path: Path, sparse: int, days: int) -> Path:
    """A copy of the store at ``path`` compacted with ``sparse_minutes`` = ``sparse`` (hours not built)."""
    copy = path.with_suffix(f".sparse{sparse}.duckdb")
    shutil.copy(path, copy)
    with DuckDBHistorian(copy, background_flush=False, sparse_minutes=sparse) as h:
        h.compact(T0 + (days + 1) * DAY)
    return copy


def query_times(path: Path, days: int, sparse: int, runs: int, label: str) -> None:
    """Aggregates over the first day of the store at ``path`` compacted with ``sparse`` and with 0, alternating."""
    stores = {s: DuckDBHistorian(compacted_copy(path, s, days), background_flush=False) for s in (sparse, 0)}
    loads = [os.getloadavg()[0]]
    try:
        for h in stores.values():
            h.open()
        ids = sorted(int(t) for t in stores[0].tags().column("tag_id").to_pylist())
        took: dict[tuple[int, int], list[float]] = {}
        for _ in range(runs):
            for minutes in (1, 5, 60):
                for s, h in stores.items():
                    t = time.perf_counter()
                    h.aggregate(ids, T0, T0 + DAY, minutes * 60 * S)
                    took.setdefault((minutes, s), []).append((time.perf_counter() - t) * 1e3)
            loads.append(os.getloadavg()[0])
    finally:
        for h in stores.values():
            h.close()
    load = f"{min(loads):.1f}-{max(loads):.1f}"
    for minutes in (1, 5, 60):
        on, off = (statistics.median(took[(minutes, s)]) for s in (sparse, 0))
        emit(f"historian.aggregate_day.{label}.{minutes}min", on, "ms", runs=runs, load=load,
             sparse_minutes=sparse, ratio=round(on / off, 2), every_minute_stored_ms=round(off, 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", type=int, default=100)
    p.add_argument("--period", type=float, default=1.0, help="seconds between two samples of a tag")
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--batch-rows", type=int, default=10_000, help="about how many rows per write() batch")
    p.add_argument("--flush-rows", type=int, default=200_000, help="the store flushes every this many rows")
    p.add_argument("--data", choices=("walk", "fleet"), default="walk")
    p.add_argument("--dir", type=Path, default=Path("/tmp/plantlink-bench-historian-size"))
    p.add_argument("--sparse-minutes", type=int, default=None,
                   help="compaction leaves the minutes of tags with fewer samples a minute in raw (0: off)")
    p.add_argument("--queries", type=int, default=0, metavar="RUNS",
                   help="time aggregates with --sparse-minutes against 0 instead of measuring sizes")
    a = p.parse_args()
    sparse = settings.sparse_minutes(a.sparse_minutes)
    shutil.rmtree(a.dir, ignore_errors=True)
    a.dir.mkdir(parents=True)
    path = a.dir / "h.duckdb"
    label = f"{a.data}.{a.tags}tags_{a.period:g}s" + (f".sparse{sparse}" if sparse else "")
    target = "<= 1.9" if a.period <= 1 else "<= 2.5"
    t = time.perf_counter()
    with DuckDBHistorian(path, flush_rows=a.flush_rows, background_flush=False) as h:
        fill(h, a.tags, a.period, a.days, a.batch_rows, a.data)
        n = h.samples_stored
    log(f"filled {n:,} samples in {time.perf_counter() - t:.1f} s")
    if a.queries:
        query_times(path, a.days, sparse, a.queries, label.split(".sparse")[0])
        shutil.rmtree(a.dir, ignore_errors=True)
        return
    compression(path)
    report(f"{label}.appended", path, n, target)
    with DuckDBHistorian(path, background_flush=False, sparse_minutes=sparse) as h:
        t = time.perf_counter()
        compact = getattr(h, "compact", None)
        if compact is None:
            return
        done = compact(T0 + (a.days + 1) * DAY)
        emit(f"historian.compaction_time.{label}", time.perf_counter() - t, "s", tables=done)
    compression(path)
    report(f"{label}.compacted", path, n, target)
    if not a.dir.name.startswith("keep"):
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
