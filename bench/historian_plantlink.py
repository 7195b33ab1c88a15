"""plantlink's part of the historian bench, run in a child process of ``bench/historian.py`` (so that its
peak memory is the historian's, not the workload generator's).

The write path is the runtime's (``plantlink.runtime``): each batch goes into a ``WriteAheadLog`` (group commit,
fsynced), is delivered on the in-process bus once logged, and a ``HistorianWriter`` writes it into the
historian (``open_historian("duckdb")`` with its default options) and flushes every ``flush_interval`` seconds
(the ``Runtime``'s default), then checkpoints the log. The feeder keeps at most
``IN_FLIGHT`` batches appended and not yet delivered (a connector fleet faster than the disk would fill the log
and be refused); the log holds delivery on disk while more than its ``hold_bytes`` waits for the historian on
the bus (as the runtime's does), and the feeder waits with it.

The clock runs from the first batch read from the workload file until the historian's ``durable_seq``
reaches the last batch's sequence number. Then the writer, the log and the historian are stopped and closed
(``close_s``), the directory's size taken, the store reopened and queried.

Prints one JSON object (the figures) as its last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.historian_peers import du, peak_rss_mib, rss_mib  # noqa: E402

from plantlink.bus import open_bus  # noqa: E402
from plantlink.historian import Historian, TagMeta, default_path, open_historian  # noqa: E402
from plantlink.historian.duckdb import reclaim  # noqa: E402
from plantlink.runtime import HistorianWriter, Runtime  # noqa: E402
from plantlink.samples import conform, now_us  # noqa: E402
from plantlink.wal import WalSettings, WriteAheadLog  # noqa: E402

IN_FLIGHT = 64


def runtime_flush_interval() -> float:
    """The flush interval ``plantlink run`` uses (the ``Runtime``'s default), so the bench follows it."""
    return float(inspect.signature(Runtime.__init__).parameters["flush_interval"].default)


def register(h: Historian, paths: list[str], text_from: int) -> np.ndarray:
    metas = [TagMeta(p, "", "string" if i >= text_from else "float") for i, p in enumerate(paths)]
    ids = h.register_tags(metas)
    return np.array([ids[p] for p in paths], dtype=np.uint32)


async def ingest(data: Path, arrows: Path, ids: np.ndarray, flush_interval: float) -> dict[str, Any]:
    h = open_historian("duckdb", path=default_path(data))
    wal = WriteAheadLog(data / "wal", WalSettings())
    wal.open()
    bus = open_bus("inproc")
    writer = HistorianWriter(h, bus.subscribe("historian"), flush_interval,
                             after_flush=lambda: wal.checkpoint(h.durable_seq))
    writer.start()
    wal.start(bus.publish, h.durable_seq, bus.backlog_bytes)  # the runtime's way: held on disk when behind
    delivered = [0]

    def done() -> None:
        delivered[0] += 1

    appended = samples = 0
    reader = pa.ipc.open_stream(pa.OSFile(str(arrows)))
    t0 = time.perf_counter()
    for batch in reader:
        batch = conform(remap(batch, ids))
        while not wal.append(batch, done):  # full: wait for the historian to catch up (not expected)
            await asyncio.sleep(0.01)
        appended += 1
        samples += batch.num_rows
        while appended - delivered[0] >= IN_FLIGHT:
            await asyncio.sleep(0.001)
    await until(lambda: delivered[0] >= appended)
    last = int(wal.status()["committed_seq"])
    await until(lambda: h.durable_seq >= last)
    seconds = time.perf_counter() - t0
    t = time.perf_counter()
    await writer.stop()
    await wal.stop()
    wal.checkpoint(h.durable_seq)
    await asyncio.to_thread(h.close)
    close_s = time.perf_counter() - t
    return {"samples": samples, "batches": appended, "seconds": seconds, "close_s": close_s,
            "stored": h.samples_stored, "refused": h.refused, "writer_errors": writer.errors,
            "wal_fsyncs": wal.stats.fsyncs}


def remap(batch: pa.RecordBatch, ids: np.ndarray) -> pa.RecordBatch:
    """The workload's tag index -> the historian's tag id (what a connector's point table holds)."""
    tag = pa.array(ids[batch.column("tag_id").to_numpy()], pa.uint32())
    return batch.set_column(0, "tag_id", tag)


async def until(cond: Callable[[], bool]) -> None:
    while not cond():
        await asyncio.sleep(0.001)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def queries(data: Path, ids: np.ndarray, q: dict[str, Any], runs: int) -> dict[str, Any]:
    t = time.perf_counter()
    h = open_historian("duckdb", path=default_path(data))
    reopen_ms = (time.perf_counter() - t) * 1000
    numeric = ids[: q["numeric"]].tolist()
    latest = timed(lambda: h.latest(numeric), runs + 1)
    one = int(ids[q["downsample_tag"]])
    ds = timed(lambda: h.downsample(one, q["start_us"], q["end_us"], n_out=1000), runs + 1)
    points_in = h.raw(one, q["start_us"], q["end_us"], limit=10**9).num_rows
    points_out = h.downsample(one, q["start_us"], q["end_us"], n_out=1000).num_rows
    ten = ids[: q["aggregate_tags"]].tolist()
    a, b = q["day_start_us"], q["end_us"]
    ag1 = timed(lambda: h.aggregate(ten, a, b, 60_000_000), runs + 1)
    rows_1m = h.aggregate(ten, a, b, 60_000_000).num_rows
    ag10 = timed(lambda: h.aggregate(ten, a, b, 10_000_000), runs + 1)
    rows_10s = h.aggregate(ten, a, b, 10_000_000).num_rows
    h.close()
    return {"reopen_ms": reopen_ms, "latest": summary(latest, tags=len(numeric)),
            "downsample": summary(ds, points_in=points_in, points_out=points_out),
            "aggregate_1m": summary(ag1, rows=rows_1m), "aggregate_10s": summary(ag10, rows=rows_10s)}


def maintain(data: Path) -> float:
    """What the runtime's maintenance does within its interval (5 min) after the data came in: build the hour
    and day rollups and compact the closed days (``Historian.build_rollups``); returns its seconds."""
    h = open_historian("duckdb", path=default_path(data))
    t = time.perf_counter()
    h.build_rollups(now_us())
    took = time.perf_counter() - t
    h.close()
    return took


def used_bytes(path: Path) -> int:
    """The blocks the DuckDB file uses (``PRAGMA database_size``): blocks freed by compaction stay in the file
    (reused by later writes) and count in ``du`` but not here."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT block_size * used_blocks FROM pragma_database_size()").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def open_day_rows(path: Path) -> int:
    """The rows of the newest raw day table (the day the workload ends in: still open at the maintenance pass,
    not compacted). While it holds more than ``reclaim.OPEN_ROWS`` it is not moved, and as it was written last
    it holds the file's tail: the pass cannot shrink the file (the workload ends an hour before the run
    starts, so this depends on the hour of the day the bench runs: about 100 rows a second from 00:00 UTC)."""
    import duckdb

    from plantlink.historian.duckdb.layout import RAW, table, tables_of

    con = duckdb.connect(str(path), read_only=True)
    try:
        days = tables_of(con, RAW)
        row = con.execute(f"SELECT count(*) FROM {table(RAW, max(days))}").fetchone() if days else None
    finally:
        con.close()
    return int(row[0]) if row else 0


def summary(ms: list[float], **extra: Any) -> dict[str, Any]:
    """The median of the warm runs; the first (cold) one beside it."""
    return {"ms": statistics.median(ms[1:]), "first_ms": round(ms[0], 3), **extra}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arrows", type=Path, required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--spec", required=True, help="JSON: paths, text_from, queries, runs")
    a = p.parse_args()
    spec = json.loads(a.spec)
    pa.array([0])  # pyarrow imports pandas on its first array (about 51 MiB): an import, in the baseline
    baseline = rss_mib_self()
    a.dir.mkdir(parents=True, exist_ok=True)
    h = open_historian("duckdb", path=default_path(a.dir))
    ids = register(h, spec["paths"], spec["text_from"])
    h.close()
    out = asyncio.run(ingest(a.dir, a.arrows, ids, runtime_flush_interval()))
    out["flush_interval"] = runtime_flush_interval()
    out["peak_mib"] = peak_rss_mib_self()
    out["baseline_mib"] = baseline
    out["disk_bytes_as_written"] = du(a.dir)
    out["maintenance_s"] = maintain(a.dir)
    out["disk_bytes"] = du(a.dir)
    out["store_bytes"] = out["disk_bytes"] - du(a.dir / "wal")
    out["used_bytes"] = used_bytes(default_path(a.dir))
    out["open_day_rows"] = open_day_rows(default_path(a.dir))
    out["open_day_movable"] = out["open_day_rows"] <= reclaim.OPEN_ROWS
    out["queries"] = queries(a.dir, ids, spec["queries"], spec["runs"])
    out["peak_mib_with_queries"] = peak_rss_mib_self()
    print(json.dumps(out), flush=True)


def rss_mib_self() -> float:
    return rss_mib(os.getpid())


def peak_rss_mib_self() -> float:
    try:
        return peak_rss_mib(os.getpid())
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
