"""VictoriaMetrics' bytes per sample on the data ``historian_size.py`` stores (the same generator and seed).

Starts ``victoria-metrics`` (on PATH) on a free loopback port with an empty data directory and
``-retentionPeriod 100y`` (the data is dated 2026), imports every tag as one series
(``/api/v1/import``, JSON lines, millisecond timestamps: VictoriaMetrics keeps milliseconds), forces a flush
and a merge, and reports the data directory's size (``du``, without the ``cache`` and ``snapshots``
folders) per sample. Bad-quality samples are imported too (VictoriaMetrics has no quality).

    .venv/bin/python bench/historian_vm_size.py --tags 100 --period 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from historian_size import DAY, emit, generator, log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes = b"") -> None:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=600) as r:
        r.read()


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("victoria-metrics exited")
        try:
            urllib.request.urlopen(f"{base}/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("victoria-metrics did not start")


def data_bytes(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in ("cache", "snapshots")]
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def series(tags: int, period_s: float, days: int, data: str):  # type: ignore[no-untyped-def]
    """The same samples ``historian_size.fill`` writes: (tag index, ts us, value) arrays per tag."""
    walk = generator(data, tags, period_s)
    ids = np.arange(tags, dtype=np.uint32)
    total = int(days * DAY // walk.period)
    per = max(1, 10_000 // tags)
    parts = [walk.batch(ids, s0, min(per, total - s0)) for s0 in range(0, total, per)]
    tag = np.concatenate([p.column("tag_id").to_numpy() for p in parts])
    ts = np.concatenate([p.column("ts").cast("int64").to_numpy() for p in parts])
    value = np.concatenate([p.column("value").to_numpy() for p in parts])
    order = np.lexsort((ts, tag))
    return tag[order], ts[order], value[order]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", type=int, default=100)
    p.add_argument("--period", type=float, default=1.0)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--data", choices=("walk", "fleet"), default="walk")
    p.add_argument("--dir", type=Path, default=Path("/tmp/plantlink-bench-vm-size"))
    a = p.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    a.dir.mkdir(parents=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(["victoria-metrics", f"-storageDataPath={a.dir}", f"-httpListenAddr=127.0.0.1:{port}",
                             "-retentionPeriod=100y", "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL)
    try:
        wait_ready(base, proc)
        tag, ts, value = series(a.tags, a.period, a.days, a.data)
        bounds = np.flatnonzero(np.r_[True, tag[1:] != tag[:-1], True])
        lines = []
        for i in range(len(bounds) - 1):
            s, e = bounds[i], bounds[i + 1]
            lines.append(json.dumps({"metric": {"__name__": "bench", "tag": f"t{int(tag[s])}"},
                                     "values": value[s:e].tolist(), "timestamps": (ts[s:e] // 1000).tolist()}))
        post(f"{base}/api/v1/import", "\n".join(lines).encode())
        post(f"{base}/internal/force_flush")
        time.sleep(2)
        post(f"{base}/internal/force_merge")
        time.sleep(5)
        n = len(ts)
        size = data_bytes(a.dir)
        log(f"victoria-metrics: {n:,} samples, {size:,} bytes in {a.dir}")
        emit(f"victoriametrics.bytes_per_sample.{a.data}.{a.tags}tags_{a.period:g}s", size / n, "B/sample", samples=n,
             bytes=size)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
