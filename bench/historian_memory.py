"""Peak memory of the DuckDB historian under sustained ingest, the runtime's way (bus -> HistorianWriter).

    .venv/bin/python bench/historian_memory.py [--tags 1000 --rate 1500000 --seconds 60 --dir /tmp/x]
        [--flush-rows N --memory-limit 128MB --threads 2] [--profile]

A child process opens a store, registers ``--tags`` tags and publishes batches (one sample of every tag per
instant, 100 instants a batch) on an in-process bus at ``--rate`` samples/s offered for ``--seconds``;
``runtime.HistorianWriter`` consumes its lossless subscription and flushes every second, as ``plantlink
run`` does. ``--wal``: the batches go through the runtime's write-ahead log first (``WalSettings`` defaults,
``--wal-max-mb`` on disk), which holds delivery on disk while the bus's backlog is above its ``hold_bytes``;
offered faster than the historian stores, the backlog then waits in the log's files, not in memory, and the
run ends when every batch is durable. The child samples its RSS every 50 ms and reports the high-water mark
(VmHWM), the RSS after open (before ingest), the samples stored and the largest backlog on the bus (and in
the log). ``--profile`` adds tracemalloc's top Python allocation sites at the peak (DuckDB's own memory is
outside tracemalloc). One JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = self.peak_anon = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, status_mib("VmRSS"))
            self.peak_anon = max(self.peak_anon, status_mib("RssAnon"))


async def ingest(args: argparse.Namespace, h: Any) -> dict[str, Any]:
    from plantlink.bus.inproc import InProcBus
    from plantlink.runtime import HistorianWriter
    from plantlink.samples import Quality, numeric_batch
    from plantlink.wal import WalSettings, WriteAheadLog

    bus = InProcBus()
    sub = bus.subscribe("historian")
    wal = WriteAheadLog(Path(args.dir) / "wal", WalSettings(max_bytes=args.wal_max_mb * 2**20)) if args.wal else None
    writer = HistorianWriter(h, sub, flush_interval=1.0,
                             after_flush=lambda: wal.checkpoint(h.durable_seq) if wal is not None else None)
    writer.start()
    publish: Callable[[pa.RecordBatch], object] = bus.publish
    if wal is not None:
        wal.open()
        wal.start(bus.publish, h.durable_seq, bus.backlog_bytes)
        publish = wal.append
    held = 0
    ids = np.arange(1, args.tags + 1, dtype=np.uint32)
    steps = 100
    rows = steps * args.tags
    tag_col = np.tile(ids, steps)
    rng = np.random.default_rng(1)
    values = rng.normal(100, 10, rows)
    t0 = 1_772_409_600_000_000
    period_s = rows / args.rate
    start = time.perf_counter()
    sent = backlog = refused = 0
    k = 0
    while (now := time.perf_counter() - start) < args.seconds:
        ts = t0 + (k * steps + np.repeat(np.arange(steps, dtype=np.int64), args.tags)) * 10_000  # 10 ms apart
        if publish(numeric_batch(tag_col, ts, values + k, int(Quality.GOOD))) is False:
            refused += rows
        sent += rows
        k += 1
        backlog = max(backlog, sub.pending())
        held = max(held, int(wal.status()["held_bytes"])) if wal is not None and k % 10 == 0 else held
        await asyncio.sleep(max(0.0, k * period_s - now))
    offered_s = time.perf_counter() - start
    if wal is not None:  # every committed batch durable, then stop (nothing is left held)
        while wal.stats.committed_batches < wal.stats.appended_batches or h.durable_seq < wal.status()["committed_seq"]:
            await asyncio.sleep(0.01)
        await wal.stop()
    await writer.stop()
    return {"sent": sent, "offered_s": offered_s, "drained_s": time.perf_counter() - start,
            "backlog_batches": backlog, "batch_rows": rows, "stored": writer.received, "refused": refused,
            "held_mib": held / 2**20, "wal": wal.status() if wal is not None else None}


def child(args: argparse.Namespace) -> None:
    import tracemalloc

    import plantlink.runtime  # noqa: F401 - imported before the baseline: the API and engines it pulls in
    from plantlink.historian import TagMeta
    from plantlink.historian.duckdb import DuckDBHistorian

    if args.profile:
        tracemalloc.start(8)
    opts: dict[str, Any] = {k: v for k, v in (("flush_rows", args.flush_rows), ("memory_limit", args.memory_limit),
                                              ("threads", args.threads)) if v}
    imported, imported_anon = status_mib("VmRSS"), status_mib("RssAnon")
    h = DuckDBHistorian(Path(args.dir) / "historian.duckdb", **opts)
    h.open()
    h.register_tags([TagMeta(f"m{i // 20}/t{i % 20}") for i in range(args.tags)])
    base = status_mib("VmRSS")
    sampler = RssSampler()
    sampler.start()
    out = asyncio.run(ingest(args, h))
    h.close()
    sampler.stop.set()
    hwm = max(status_mib("VmHWM"), sampler.peak)
    emit("historian_ingest_peak_memory", hwm, "MiB", target="<= 256", rss_after_open_mib=round(base, 1),
         settings=h.settings(), imports_mib=round(imported, 1))
    emit("historian_ingest_peak_memory_above_imports", hwm - imported, "MiB")
    emit("historian_ingest_peak_anon_memory_above_imports", sampler.peak_anon - imported_anon, "MiB",
         note="RssAnon: heap and mmaps, without the shared libraries' pages")
    emit("historian_ingest_offered_rate", out["sent"] / out["offered_s"], "samples/s")
    emit("historian_ingest_stored_rate", out["stored"] / out["drained_s"], "samples/s")
    emit("historian_ingest_max_bus_backlog", out["backlog_batches"] * out["batch_rows"], "samples")
    if out["wal"] is not None:
        w = out["wal"]
        emit("historian_ingest_max_held_on_disk", out["held_mib"], "MiB", holds=w["holds"],
             read_back_batches=w["read_back_batches"], refused_samples=out["refused"], hold_bytes=w["hold_bytes"])
    if args.profile:
        snap = tracemalloc.take_snapshot()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        emit("historian_ingest_python_peak_traced", peak, "MiB")
        for stat in snap.statistics("lineno")[:8]:
            print(json.dumps({"site": str(stat.traceback), "mib": round(stat.size / 2**20, 1)}), file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tags", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1_500_000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--dir")
    p.add_argument("--flush-rows", type=int)
    p.add_argument("--memory-limit")
    p.add_argument("--threads", type=int)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--wal", action="store_true", help="through the write-ahead log (held delivery)")
    p.add_argument("--wal-max-mb", type=int, default=8192, help="the log's size limit on disk (with --wal)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        argv = [a for a in sys.argv[1:] if not a.startswith("--dir")]
        if "--dir" in sys.argv:
            i = sys.argv.index("--dir")
            argv = sys.argv[1:i] + sys.argv[i + 2:]
        cmd = [sys.executable, __file__, "--child", "--dir", d, *argv]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


if __name__ == "__main__":
    main()
