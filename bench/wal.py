"""Write-ahead log benchmarks; one JSON line per figure ({"name", "value", "unit"}).

(a) paced ingest: 10,000 samples/s (100 batches of 100 samples a second, as connectors deliver them) for
    --seconds, through a ``WriteAheadLog`` in a temporary directory on the data disk, delivered to a no-op
    sink: the CPU this process spends with the log and without it (the same loop straight into the sink),
    fsyncs/s, fsync p50/p99, arrival to delivery (``commit``) p50/p99, bytes on disk per sample.
(b) flat out: 1,000-sample batches appended as fast as the log commits them (at most 64 batches queued):
    samples/s and fsyncs/s.
(c) live latency with and without the log: ``bench/api.py --only live`` (5,000 tags at 1 Hz, 220 WebSocket
    clients) run ``--wal off`` then ``--wal on``, --rounds times, with the samples in 50 batches a second;
    the figures of every run, and the median difference of their publish-to-client p50 and p99.

    .venv/bin/python bench/wal.py [--seconds 20] [--live-seconds 30] [--rounds 2] [--only ingest|live]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from plantlink.samples import numeric_batch  # noqa: E402
from plantlink.wal import WalSettings, WriteAheadLog  # noqa: E402


def emit(name: str, value: float | None, unit: str, **extra: Any) -> None:
    v = None if value is None else round(value, 3)
    print(json.dumps({"name": name, "value": v, "unit": unit, **extra}), flush=True)


def batches(n: int, rows: int) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(1)
    ids = np.arange(1, rows + 1)
    return [numeric_batch(ids, 1_772_409_600_000_000 + k * 10_000, rng.normal(50, 5, rows), 192) for k in range(n)]


async def paced(append: Callable[[pa.RecordBatch], None], seconds: float, per_s: int, rows: int) -> float:
    """Append ``per_s`` batches a second, evenly spread; return the CPU seconds the process spent."""
    data = batches(per_s, rows)
    c0, start = time.process_time(), time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        append(data[k % per_s])
        k += 1
        await asyncio.sleep(max(0.0, start + k / per_s - time.monotonic()))
    return time.process_time() - c0


async def bench_ingest(seconds: float) -> None:
    per_s, rows = 100, 100
    delivered = [0]

    def sink(b: pa.RecordBatch) -> None:
        delivered[0] += b.num_rows

    base = await paced(sink, seconds, per_s, rows)
    with tempfile.TemporaryDirectory(prefix="plantlink-wal-", dir=ROOT) as tmp:
        wal = WriteAheadLog(tmp, WalSettings())
        wal.open()
        wal.start(sink)
        cpu = await paced(wal.append, seconds, per_s, rows)
        await wal.stop()
        st = wal.status()
        emit("wal.paced_10000_per_s.cpu", 100 * (cpu - base) / seconds, "% of one core", with_wal_pct=round(
            100 * cpu / seconds, 2), without_wal_pct=round(100 * base / seconds, 2), batches_per_s=per_s)
        emit("wal.paced_10000_per_s.cpu_per_sample", 1e6 * (cpu - base) / (seconds * per_s * rows), "us/sample")
        emit("wal.paced_10000_per_s.fsyncs", st["fsyncs"] / seconds, "1/s", commit_ms=st["commit_ms"])
        emit("wal.paced_10000_per_s.fsync.p50", wal.stats.fsync_ms.pct(50), "ms")
        emit("wal.paced_10000_per_s.fsync.p99", st["fsync_p99_ms"], "ms")
        emit("wal.paced_10000_per_s.commit.p50", st["commit_p50_ms"], "ms", what="arrival to delivery")
        emit("wal.paced_10000_per_s.commit.p99", st["commit_p99_ms"], "ms", what="arrival to delivery")
        emit("wal.bytes_per_sample", st["bytes_written"] / st["appended_rows"], "bytes", rows_per_batch=rows)

        wal = WriteAheadLog(Path(tmp) / "flat", WalSettings())
        wal.open()
        wal.start(sink)
        data = batches(64, 1000)
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < seconds:
            if wal.stats.appended_batches - wal.stats.committed_batches < 64:
                wal.append(data[k % 64])
                k += 1
            else:
                await asyncio.sleep(0.001)
        await wal.stop()
        elapsed = time.perf_counter() - t0
        emit("wal.flat_out.rate", wal.stats.appended_rows / elapsed, "samples/s", rows_per_batch=1000,
             fsyncs_per_s=round(wal.stats.fsyncs / elapsed, 1))


def live(seconds: float, wal: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--only", "live", "--seconds", str(seconds), "--wal", wal,
         "--batches", "50"], capture_output=True, text=True, check=True).stdout
    figures = {}
    load = round(os.getloadavg()[0], 1)
    for line in out.splitlines():
        row = {**json.loads(line), "load_avg_1m": load}
        print(json.dumps(row), flush=True)
        figures[row["name"]] = row["value"]
    return figures


def bench_live(seconds: float, rounds: int) -> None:
    """Alternate runs without and with the log (the machine's load drifts); the median of the differences."""
    diffs: dict[str, list[float]] = {"p50": [], "p99": []}
    for _ in range(rounds):
        off = live(seconds, "off")
        on = live(seconds, "on")
        for q, d in diffs.items():
            name = f"api.live.5000tags_220clients.values.{q}"
            d.append(on[name] - off[name])
    for q, d in diffs.items():
        emit(f"wal.live_added.{q}", float(np.median(d)), "ms", runs=[round(x, 1) for x in d], batches_per_s=50,
             budget_ms=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of each ingest measurement")
    ap.add_argument("--live-seconds", type=float, default=30.0, help="seconds of each live run")
    ap.add_argument("--rounds", type=int, default=2, help="live: pairs of runs (without, with the log)")
    ap.add_argument("--only", choices=["ingest", "live"])
    args = ap.parse_args()
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "pyarrow": pa.__version__, "load_avg_1m": round(os.getloadavg()[0], 1)}}),
          flush=True)
    if args.only in (None, "ingest"):
        asyncio.run(bench_ingest(args.seconds))
    if args.only in (None, "live"):
        bench_live(args.live_seconds, args.rounds)


if __name__ == "__main__":
    main()
