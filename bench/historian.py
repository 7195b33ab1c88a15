"""Historian benchmark: the same plant-like workload through plantlink's runtime write path, and through
InfluxDB and VictoriaMetrics when Debian's packages are installed, figures side by side.

    .venv/bin/python bench/historian.py [--tags 100] [--days 1] [--only plantlink,influxdb,victoriametrics]
    .venv/bin/python bench/historian.py --reference      # the issue's run: 100 tags x 7 days (about 63 M samples)

1. The workload (``bench/historian_workload.py``) is generated once, before any clock runs, into files: 1 Hz
   tags with jitter, gaps, 1 % bad quality, sparse 10 s tags, two text tags, batches of ``--batch-seconds``
   of data delivered partly out of order and late; an Arrow stream for plantlink, line protocol for the peers.
2. plantlink runs in a child process (``bench/historian_plantlink.py``): write-ahead log -> bus -> the
   runtime's ``HistorianWriter`` with the runtime's flush interval -> the DuckDB historian with its defaults.
3. Each peer is started on free ports with a data directory of its own (``bench/historian_peers.py``), fed
   the same batches over HTTP by ``--connections`` connections, made durable, left to settle (its data
   directory unchanged for ``--settle-s``), queried, and stopped (also when anything fails).

Figures, per system (``_plantlink``, ``_influxdb``, ``_victoriametrics`` at the end of each name):

* ``historian_ingest_durable``: samples / wall seconds from the first batch handed in to the last one durable.
* ``historian_bytes_per_sample``: the data directory's allocated bytes (``du``) / samples, after plantlink's
  close and one pass of the runtime's maintenance (rollups built, closed days compacted: ``as_written`` and
  ``maintenance_s`` beside it), after the peers settled. plantlink's depends on the hour the bench runs: the
  workload ends an hour before, in a day still open at the pass; once that day holds more than the historian's
  ``reclaim.OPEN_ROWS`` (4 M rows: from about 11:00 UTC at the reference size) it holds the file's tail and the
  freed blocks stay in the file (``open_day_rows``, ``open_day_movable`` and ``used_blocks`` beside it).
* ``historian_peak_memory``: the writing process's resident-memory high-water mark (``VmHWM``), MiB, over the
  ingest and the settling (plantlink: its child process, after imports; ``baseline_mib`` beside it).
* ``historian_latest``, ``historian_downsample``, ``historian_aggregate_1m``, ``historian_aggregate_10s``:
  median ms of ``--runs`` warm runs (``first_ms``: the first, cold one).

A peer's line carries ``ratio`` = plantlink's value / the peer's. One JSON line per figure on stdout ({"name",
"value", "unit"}, extras beside); progress on stderr; the peers' logs are in the work directory (``--keep``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.historian_peers import (  # noqa: E402
    Influx,
    Server,
    Victoria,
    influx_queries,
    peak_rss_mib,
    rss_mib,
    victoria_queries,
)
from bench.historian_workload import Files, Layout, lp_batches, write  # noqa: E402

S = 1_000_000
DAY = 86_400
SYSTEMS = ("plantlink", "influxdb", "victoriametrics")
QUERY_FIGURES = ("latest", "downsample", "aggregate_1m", "aggregate_10s")
LOWER_IS_BETTER = {"bytes_per_sample", "peak_memory", *QUERY_FIGURES}


def emit(name: str, value: float | None, unit: str, **extra: Any) -> None:
    v = None if value is None else round(value, 3)
    print(json.dumps({"name": name, "value": v, "unit": unit, **extra}), flush=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_plantlink(work: Path, files: Files, lay: Layout, q: dict[str, Any], runs: int) -> dict[str, Any]:
    spec = {"paths": q["paths"], "text_from": lay.dense + lay.sparse, "queries": q, "runs": runs}
    cmd = [sys.executable, str(ROOT / "bench" / "historian_plantlink.py"), "--arrows", str(files.arrows),
           "--dir", str(work / "plantlink"), "--spec", json.dumps(spec)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def run_peer(cls: type[Server], work: Path, files: Files, samples: int, q: dict[str, Any], a: argparse.Namespace
             ) -> dict[str, Any]:
    d = work / cls.name
    d.mkdir()
    with cls(d, d / "server.log") as s:
        baseline = rss_mib(s.pid)
        t0 = time.perf_counter()
        batches = s.write_all(lp_batches(files), a.connections)
        s.make_durable()
        seconds = time.perf_counter() - t0
        log(f"  {cls.name}: {samples / seconds:,.0f} samples/s durable; settling")
        disk, waited = s.settle(a.settle_s)
        parts = s.parts_mib()
        peak = peak_rss_mib(s.pid)
        queries = influx_queries(s, q, a.runs) if isinstance(s, Influx) else victoria_queries(s, q, a.runs)
        assert isinstance(s, Influx | Victoria)
        return {"samples": samples, "batches": batches, "seconds": seconds, "disk_bytes": disk,
                "settle_s": waited, "parts_mib": parts, "peak_mib": peak, "baseline_mib": baseline, "queries": queries,
                "peak_mib_with_queries": peak_rss_mib(s.pid)}


def report(results: dict[str, dict[str, Any]]) -> None:
    """One line per figure and system; a peer's carries the ratio plantlink / peer."""
    figures: dict[str, dict[str, tuple[float, str, dict[str, Any]]]] = {}
    for sysname, r in results.items():
        n = r["samples"]
        f = figures.setdefault(sysname, {})
        f["ingest_durable"] = (n / r["seconds"], "samples/s", {
            "samples": n, "seconds": round(r["seconds"], 2), "batches": r["batches"], "load": r["load"],
            "bytes_per_sample": round(r["disk_bytes"] / n, 3), "peak_memory_mib": round(r["peak_mib"], 1),
            **{k: r[k] for k in ("flush_interval", "close_s", "stored", "refused", "writer_errors") if k in r}})
        f["bytes_per_sample"] = (r["disk_bytes"] / n, "bytes", {
            "disk_mib": round(r["disk_bytes"] / 2**20, 1),
            **({"store_only": round(r["store_bytes"] / n, 3)} if "store_bytes" in r else {}),
            **({"as_written": round(r["disk_bytes_as_written"] / n, 3), "maintenance_s": round(r["maintenance_s"], 1),
                "used_blocks": round(r["used_bytes"] / n, 3), "open_day_rows": r["open_day_rows"],
                "open_day_movable": r["open_day_movable"]} if "maintenance_s" in r else {}),
            **({"settle_s": round(r["settle_s"], 1), "parts_mib": r["parts_mib"]} if "settle_s" in r else {})})
        f["peak_memory"] = (r["peak_mib"], "MiB", {"baseline_mib": round(r["baseline_mib"], 1),
                                                   "with_queries_mib": round(r["peak_mib_with_queries"], 1)})
        for k in QUERY_FIGURES:
            qr = dict(r["queries"][k])
            f[k] = (qr.pop("ms"), "ms", qr)
        if "reopen_ms" in r["queries"]:
            f["reopen"] = (r["queries"]["reopen_ms"], "ms", {"note": "open of the closed store, before latest"})
    base = figures.get("plantlink", {})
    for sysname, f in figures.items():
        for kind, (value, unit, extra) in f.items():
            ratio = {}
            if sysname != "plantlink" and kind in base and value:
                ratio = {"ratio": round(base[kind][0] / value, 3),
                         "better": "lower" if kind in LOWER_IS_BETTER else "higher"}
            emit(f"historian_{kind}_{sysname}", value, unit, **ratio, **extra)


def query_spec(lay: Layout, t0: int, t_end: int) -> dict[str, Any]:
    start_us, end_us = t0 * S - S, t_end * S + S
    return {"paths": [lay.path(i) for i in range(lay.total)], "numeric": lay.dense + lay.sparse,
            "downsample_tag": 1, "aggregate_tags": min(10, lay.dense), "start_us": start_us, "end_us": end_us,
            "day_start_us": max(start_us, end_us - DAY * S)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", type=int, default=100, help="1 Hz tags (plus tags // 10 at 10 s and 2 text tags)")
    p.add_argument("--days", type=float, default=1.0, help="days of data")
    p.add_argument("--reference", action="store_true", help="the issue's run: 100 tags x 7 days")
    p.add_argument("--batch-seconds", type=int, default=50, help="seconds of data per delivered batch")
    p.add_argument("--connections", type=int, default=os.cpu_count() or 2, help="parallel HTTP writers per peer")
    p.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated systems to run")
    p.add_argument("--runs", type=int, default=5, help="warm repetitions per query figure")
    p.add_argument("--settle-s", type=float, default=10.0, help="a peer has settled when its data directory "
                   "has not changed for this long (at most 180 s)")
    p.add_argument("--dir", type=Path, help="work directory, new or empty; removed afterwards unless --keep "
                   "(default: a new one under the temp directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    a = p.parse_args()
    if a.reference:
        a.tags, a.days = 100, 7.0
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    if unknown := set(only) - set(SYSTEMS):
        p.error(f"unknown system(s) {sorted(unknown)}; choose from {SYSTEMS}")
    # SIGTERM unwinds like Ctrl-C: the peers' servers are stopped and the work directory removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.dir is not None and a.dir.exists() and any(a.dir.iterdir()):
        p.error(f"--dir {a.dir} is not empty (the bench removes its work directory afterwards)")
    work = a.dir or Path(tempfile.mkdtemp(prefix="plantlink-bench-historian-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(a, work, only)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(a: argparse.Namespace, work: Path, only: list[str]) -> None:
    lay = Layout(a.tags, a.tags // 10)
    seconds = int(a.days * DAY)
    t_end = (int(time.time()) - 3600) // 60 * 60  # an hour ago: no store refuses or hides fresh samples
    t0 = t_end - seconds
    t = time.perf_counter()
    files, samples, batches = write(work, lay, t0, seconds, a.batch_seconds)
    emit("historian_workload_generation", time.perf_counter() - t, "s", samples=samples, batches=batches,
         tags=lay.total, days=a.days, lp_mib=round(files.lp.stat().st_size / 2**20, 1))
    q = query_spec(lay, t0, t_end)
    results: dict[str, dict[str, Any]] = {}
    for name in only:
        if name != "plantlink" and not {"influxdb": Influx, "victoriametrics": Victoria}[name].available():
            log(f"{name}: not installed (apt-get install -y {'influxdb' if name == 'influxdb' else 'victoria-metrics'})"
                "; skipped")
            continue
        log(f"{name}: {samples:,} samples in {batches:,} batches")
        if name == "plantlink":
            r = run_plantlink(work, files, lay, q, a.runs)
        else:
            r = run_peer(Influx if name == "influxdb" else Victoria, work, files, samples, q, a)
        r["load"] = [round(x, 2) for x in os.getloadavg()]
        results[name] = r
    report(results)


if __name__ == "__main__":
    main()
