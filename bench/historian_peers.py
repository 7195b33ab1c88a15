"""InfluxDB 1.x and VictoriaMetrics as the historian bench's peers (Debian's ``influxdb`` and ``victoria-metrics``).

Each is started as a child process on free loopback ports with a temporary data directory of its own, and
stopped (SIGTERM, then SIGKILL after 30 s) when the ``with`` block ends, also on failure. Writes are the
workload's line-protocol batches over HTTP, from ``connections`` threads with one keep-alive connection each.

* InfluxDB: ``POST /write?db=bench`` answers 204 once the batch is in its write-ahead log (fsynced:
  ``wal-fsync-delay = 0s``): durable at the last 204.
* VictoriaMetrics: ``POST /write`` answers once the batch is buffered in memory; ``/internal/force_flush``
  after the last one makes everything durable and searchable: durable when it returns.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import Any

INFLUXD = "/usr/bin/influxd"
VICTORIA = "/usr/bin/victoria-metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def du(path: Path) -> int:
    """Bytes the files under ``path`` take on disk (allocated blocks, as ``du``)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


def peak_rss_mib(pid: int) -> float:
    """The resident-memory high-water mark of a process (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """One peer server process; subclasses say how to start, write and query it."""

    name = ""
    binary = ""

    def __init__(self, workdir: Path, log_to: Path):
        self.dir = workdir
        self.data = workdir / "data"
        self.port = free_port()
        self.log_to = log_to
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.binary) is not None

    def command(self) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> Server:
        self.data.mkdir(parents=True)
        with open(self.log_to, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start ({self.proc.returncode}); see {self.log_to}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.ready():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log_to}")

    def ready(self) -> bool:
        raise NotImplementedError

    def request(self, method: str, path: str, body: bytes | None = None,
                conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            if conn is None:
                c.close()

    def get_json(self, path: str, **params: Any) -> Any:
        status, body = self.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        if status != 200:
            raise RuntimeError(f"{self.name} {path}: {status} {body[:300]!r}")
        return json.loads(body)

    # -- writing --------------------------------------------------------------------------------------------
    write_path = ""

    def write_all(self, batches: Iterator[bytes], connections: int) -> int:
        """Send every batch (``connections`` in parallel); return the batches sent."""
        q: Queue[bytes | None] = Queue(maxsize=2 * connections)
        errors: list[str] = []
        sent = [0] * connections

        def run(k: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            try:
                while (body := q.get()) is not None:
                    if errors:
                        continue
                    status, answer = self.request("POST", self.write_path, body, conn)
                    if status not in (200, 204):
                        errors.append(f"{status} {answer[:300]!r}")
                    sent[k] += 1
            except Exception as exc:  # reported below; the queue is drained so the feeder never blocks
                errors.append(repr(exc))
                while q.get() is not None:
                    pass
            finally:
                conn.close()

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(connections)]
        for t in threads:
            t.start()
        for b in batches:
            q.put(b)
        for _ in threads:
            q.put(None)
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"{self.name} refused a write: {errors[0]}")
        return sum(sent)

    def make_durable(self) -> None:
        """After the last write: what it takes for everything written to be durable (and queryable)."""

    def settle(self, quiet_s: float = 10, timeout_s: float = 180) -> tuple[int, float]:
        """Wait until the data directory's size has not changed for ``quiet_s`` (background compaction and
        merges done), at most ``timeout_s``; return its size and the seconds waited."""
        t0 = time.monotonic()
        size, since = du(self.data), time.monotonic()
        while time.monotonic() - since < quiet_s and time.monotonic() - t0 < timeout_s:
            time.sleep(1)
            now = du(self.data)
            if now != size:
                size, since = now, time.monotonic()
        return size, time.monotonic() - t0

    def parts_mib(self) -> dict[str, float]:
        """The data directory's size per top-level entry (where the bytes are), MiB."""
        return {p.name: round(du(p) / 2**20, 1) for p in sorted(self.data.iterdir()) if p.is_dir()}


class Influx(Server):
    name = "influxdb"
    binary = INFLUXD
    write_path = "/write?db=bench&precision=ns"

    def command(self) -> list[str]:
        conf = self.dir / "influxdb.conf"
        d = self.data
        conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "5s"
  max-values-per-tag = 0
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
""")
        return [self.binary, "-config", str(conf)]

    def ready(self) -> bool:
        if self.request("GET", "/ping")[0] != 204:
            return False
        status, _ = self.request("POST", "/query?" + urllib.parse.urlencode({"q": "CREATE DATABASE bench"}))
        return status == 200

    def query(self, q: str) -> Any:
        out = self.get_json("/query", db="bench", epoch="ms", q=q)
        for r in out.get("results", []):
            if "error" in r:
                raise RuntimeError(f"influxdb: {r['error']} in {q}")
        return out


class Victoria(Server):
    name = "victoriametrics"
    binary = VICTORIA
    write_path = "/write"

    def command(self) -> list[str]:
        return [self.binary, f"-storageDataPath={self.data}", f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y", "-loggerLevel=WARN"]

    def ready(self) -> bool:
        return self.request("GET", "/health")[0] == 200

    def make_durable(self) -> None:
        status, body = self.request("GET", "/internal/force_flush")
        if status != 200:
            raise RuntimeError(f"victoriametrics force_flush: {status} {body[:200]!r}")

    def query(self, path: str, **params: Any) -> Any:
        out = self.get_json(path, **params)
        if out.get("status") != "success":
            raise RuntimeError(f"victoriametrics: {out}")
        return out


# -- the query shapes (``q``: the spec ``bench/historian.py`` builds; each figure: warm median, first run) --
def timed(fn: Any, runs: int) -> tuple[list[float], Any]:
    out, last = [], None
    for _ in range(runs):
        t = time.perf_counter()
        last = fn()
        out.append((time.perf_counter() - t) * 1000)
    return out, last


def summary(ms: list[float], **extra: Any) -> dict[str, Any]:
    return {"ms": statistics.median(ms[1:]), "first_ms": round(ms[0], 3), **extra}


def influx_points(out: Any) -> int:
    return sum(len(s.get("values", [])) for r in out["results"] for s in r.get("series", []))


def influx_queries(s: Influx, q: dict[str, Any], runs: int) -> dict[str, Any]:
    start, end, day = q["start_us"] * 1000, q["end_us"] * 1000, q["day_start_us"] * 1000
    one, ten = q["paths"][q["downsample_tag"]], "|".join(q["paths"][: q["aggregate_tags"]])
    step = max(1, (end - start) // 500 // 10**9)
    latest, out = timed(lambda: s.query("SELECT last(value) FROM m GROUP BY \"tag\""), runs + 1)
    tags = sum(len(r.get("series", [])) for r in out["results"])
    ds, out = timed(lambda: s.query(f"SELECT min(value), max(value) FROM m WHERE \"tag\" = '{one}' AND time >= {start} "
                                    f"AND time < {end} GROUP BY time({step}s)"), runs + 1)
    points_out = 2 * influx_points(out)
    aggs = "min(value), max(value), mean(value), first(value), last(value), count(value)"

    def agg(width: str) -> Any:
        return s.query(f"SELECT {aggs} FROM m WHERE \"tag\" =~ /^({ten})$/ AND time >= {day} AND time < {end} "
                       f"GROUP BY time({width}), \"tag\"")

    ag1, out1 = timed(lambda: agg("1m"), runs + 1)
    ag10, out10 = timed(lambda: agg("10s"), runs + 1)
    return {"latest": summary(latest, tags=tags), "downsample": summary(ds, points_out=points_out),
            "aggregate_1m": summary(ag1, rows=influx_points(out1), aggregates="min max mean first last count"),
            "aggregate_10s": summary(ag10, rows=influx_points(out10))}


def vm_points(out: Any) -> int:
    return sum(len(r.get("values", [])) for r in out["data"]["result"])


def victoria_queries(s: Victoria, q: dict[str, Any], runs: int) -> dict[str, Any]:
    """``nocache=1``: VictoriaMetrics would otherwise answer a repeated query from its rollup result cache."""
    start, end, day = q["start_us"] / 1e6, q["end_us"] / 1e6, q["day_start_us"] / 1e6
    one, ten = q["paths"][q["downsample_tag"]], "|".join(q["paths"][: q["aggregate_tags"]])
    span = int(end - start) + 1
    step = max(1, span // 500)
    latest, out = timed(lambda: s.query("/api/v1/query", query=f"last_over_time(m_value[{span}s])", time=end,
                                        nocache=1),
                        runs + 1)
    tags = len(out["data"]["result"])
    ds, out = timed(lambda: s.query("/api/v1/query_range", query=f'rollup(m_value{{tag="{one}"}}[{step}s])',
                                    start=start + step, end=end, step=f"{step}s", nocache=1), runs + 1)
    points_out = vm_points(out)

    def agg(width: int) -> Any:
        return s.query("/api/v1/query_range", query=f'rollup(m_value{{tag=~"{ten}"}}[{width}s])',
                       start=day + width, end=end, step=f"{width}s", nocache=1)

    ag1, out1 = timed(lambda: agg(60), runs + 1)
    ag10, out10 = timed(lambda: agg(10), runs + 1)
    return {"latest": summary(latest, tags=tags), "downsample": summary(ds, points_out=points_out),
            "aggregate_1m": summary(ag1, rows=vm_points(out1) // 3, aggregates="min max avg"),
            "aggregate_10s": summary(ag10, rows=vm_points(out10) // 3)}
