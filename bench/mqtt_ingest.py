"""Central ingest over MQTT (issue 12): 20 simulated Sparkplug B edge nodes (separate processes) publish DDATA of
many metrics per message through a local Mosquitto to a real plantlink runtime (this process: the MQTT
connector as Sparkplug host -> write-ahead log -> bus -> DuckDB historian), then, in the same run and on the
same broker, Mosquitto's own ``mosquitto_pub``/``mosquitto_sub`` with messages of the same size.

Each edge node ``E{i}`` (``bench/sparkplug_edges.py``) has one device ``D`` with ``--metrics`` Double metrics,
the plant model's tags ``metric: E{i}/D/m{k}``. Its births and DDATA metric blocks are encoded once with the
protobuf module; each DDATA is the payload's header (``timestamp`` = send time in ms, ``seq`` + 1 mod 256)
followed by a pre-encoded block of metrics by alias. An edge answers a rebirth request with its births.

Latency of a sample = time at the instrumented point - the DDATA's timestamp (one clock, one machine):
``durable`` when ``Historian.flush`` returns (the historian's transaction committed, every
``--flush-interval`` s), ``logged`` when ``Historian.write`` returns (the sample is then fsynced in the
write-ahead log, which is what makes it durable in plantlink, and is in the historian's write buffer;
queries see it from the next flush). Both by wrapping the runtime's historian methods. A rate is sustained when
at least 95 % of it is stored and the p99 to ``logged`` is 500 ms or less; the last figure is the highest
sustained rate and its ratio to what ``mosquitto_sub`` receives from ``mosquitto_pub`` (samples/s at the same
metrics per message) on the same broker.

    .venv/bin/python bench/mqtt_ingest.py [--edges 20] [--metrics 500] [--rates 200000,400000,600000]
                                         [--window 15] [--flush-interval 1.0]

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkplug_edges import GROUP, ddata, edge, metric_blocks

if TYPE_CHECKING:
    from plantlink.runtime import Runtime


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 2), "unit": unit, **extra}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its waited-for children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "?")
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg()[0]}


# -- the broker ---------------------------------------------------------------------------------------------
def start_broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = work / "mosquitto.conf"
    # No persistence; large queues so that a slow subscriber is measured as slow, not silently dropped.
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 1000000\nmax_queued_bytes 0\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


# -- the central ---------------------------------------------------------------------------------------------
def plant_yaml(port: int, edges: int, metrics: int) -> str:
    lines = [
        "enterprise: Bench",
        "devices:",
        f"  broker: {{protocol: mqtt, host: 127.0.0.1, port: {port}, sparkplug: {{group: {GROUP}}}}}",
        "sites:",
        "  - name: s",
        "    timezone: UTC",
        "    areas:",
        "      - name: a",
        "        lines:",
        "          - name: l",
        "            machines:",
    ]
    for e in range(edges):
        lines += [f"              - name: e{e}", "                tags:"]
        lines += [f"                  - {{name: m{k}, source: {{device: broker, metric: E{e}/D/m{k}}}}}"
                  for k in range(metrics)]
    return "\n".join(lines) + "\n"


class Probe:
    """Wraps the runtime historian's ``write`` and ``flush``: the sample timestamps (us) of each batch, and the
    wall-clock time (us) at which ``write`` returned and the ``flush`` that covers them returned."""

    def __init__(self, historian: Any):
        self.logged: list[np.ndarray] = []
        self.durable: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.recording = False
        write, flush = historian.write, historian.flush

        import pyarrow as pa

        def timed_write(batch: pa.RecordBatch, seq: int | None = None) -> None:
            write(batch, seq)
            if not self.recording:
                return
            now = time.time_ns() // 1000
            ts = batch.column("ts").view(pa.int64()).to_numpy()
            with self._lock:
                self.logged.append(now - ts)
                self._pending.append(ts)

        def timed_flush() -> int:
            with self._lock:
                covered, self._pending = self._pending, []
            n: int = flush()
            now = time.time_ns() // 1000
            with self._lock:
                self.durable.extend(now - ts for ts in covered)
            return n

        historian.write, historian.flush = timed_write, timed_flush


def pct(arrays: list[np.ndarray], q: float) -> float:
    return float(np.percentile(np.concatenate(arrays), q)) / 1000.0 if arrays else float("nan")


async def wait_connected(runtime: Runtime, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not runtime.connectors["broker"].health.ok:
        if time.monotonic() > deadline:
            raise RuntimeError("the central did not connect to the broker")
        await asyncio.sleep(0.05)


async def run_load(args: argparse.Namespace, port: int, broker: subprocess.Popen[bytes], rate: float,
                   plant: Any) -> dict[str, Any]:
    from plantlink.runtime import Runtime
    from plantlink.wal import WalSettings

    msgs_per_edge = rate / args.metrics / args.edges
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    sent = [ctx.Value("q", 0) for _ in range(args.edges)]
    ready = ctx.Value("i", 0)
    with tempfile.TemporaryDirectory(prefix="plantlink-mqtt-bench-") as tmp:
        runtime = Runtime(plant, tmp, flush_interval=args.flush_interval,
                          wal=WalSettings(enabled=args.wal == "on"))
        await runtime.start()
        assert runtime.historian is not None and runtime.writer is not None
        probe = Probe(runtime.historian)
        await wait_connected(runtime)
        procs = [ctx.Process(target=edge, args=(port, i, args.metrics, msgs_per_edge, go, stop, sent[i], ready),
                             daemon=True) for i in range(args.edges)]
        for p in procs:
            p.start()
        # every edge connected and born, and the births stored (one sample per metric each)
        births_rows = args.edges * args.metrics
        deadline = time.monotonic() + 300
        while ready.value < args.edges or runtime.writer.received < births_rows:
            if time.monotonic() > deadline or any(p.exitcode is not None for p in procs):
                raise RuntimeError(f"edges not ready: {ready.value} of {args.edges} born, "
                                   f"{runtime.writer.received} of {births_rows} birth samples stored")
            await asyncio.sleep(0.05)
        go.set()
        await asyncio.sleep(args.warmup)
        writer = runtime.writer
        probe.recording = True
        r0, c0, b0, t0 = writer.received, time.process_time(), cpu_seconds(broker.pid), time.perf_counter()
        e0 = sum(cpu_seconds(p.pid) for p in procs if p.pid)
        await asyncio.sleep(args.window)
        r1, c1, b1, t1 = writer.received, time.process_time(), cpu_seconds(broker.pid), time.perf_counter()
        e1 = sum(cpu_seconds(p.pid) for p in procs if p.pid)
        probe.recording = False
        stop.set()
        for p in procs:
            await asyncio.to_thread(p.join, 10)
        # everything sent is stored? wait until the count stops growing
        last, still = -1, 0
        while still < 10:
            await asyncio.sleep(0.2)
            now = runtime.writer.received
            still = still + 1 if now == last else 0
            last = now
        conn = runtime.connectors["broker"]
        rebirths = getattr(conn, "rebirths", 0)
        await runtime.stop()
        status = runtime.status()
    elapsed = t1 - t0
    total_sent = sum(s.value for s in sent) * args.metrics + births_rows
    return {
        "offered": rate, "rate": (r1 - r0) / elapsed,
        "central_cpu": 100 * (c1 - c0) / elapsed, "broker_cpu": 100 * (b1 - b0) / elapsed,
        "edges_cpu": 100 * (e1 - e0) / elapsed,
        "p50_logged": pct(probe.logged, 50), "p99_logged": pct(probe.logged, 99),
        "p50_durable": pct(probe.durable, 50), "p99_durable": pct(probe.durable, 99),
        "max_durable": pct(probe.durable, 100),
        "sent": total_sent, "stored": int(status["samples_stored"]), "rebirths": rebirths,
    }


# -- Mosquitto's own clients ----------------------------------------------------------------------------------
def mosquitto_clients(port: int, payload: bytes, messages: int, publishers: int, work: Path) -> float:
    """Messages/s that ``mosquitto_sub`` receives while ``publishers`` ``mosquitto_pub --repeat`` send
    ``messages`` in all (QoS 0, the payload of one DDATA), from the first received message to the last."""
    f = work / "payload.bin"
    f.write_bytes(payload)
    topic = f"spBv1.0/{GROUP}-clients/DDATA/X/D"  # not the central's group
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", topic, "-C", str(messages), "-W", "120",
                            "-F", "%l"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the subscription is made (no readiness signal from mosquitto_sub)
    each = messages // publishers
    pubs = [subprocess.Popen(["mosquitto_pub", "-p", str(port), "-t", topic, "-f", str(f), "--repeat",
                              str(each + (messages % publishers if i == 0 else 0))]) for i in range(publishers)]
    assert sub.stdout is not None
    got, first, last = 0, 0.0, 0.0
    for _ in sub.stdout:
        last = time.perf_counter()
        if got == 0:
            first = last
        got += 1
    sub.wait()
    for p in pubs:
        p.wait(60)
    return (got - 1) / (last - first) if got > 1 and last > first else 0.0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=500, help="metrics per DDATA message (and per edge node)")
    ap.add_argument("--rates", default="200000,400000,600000,700000,800000",
                    help="offered samples/s in total; the first is the target, the others look for the limit")
    ap.add_argument("--window", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--flush-interval", type=float, default=1.0, help="the runtime's historian flush interval")
    ap.add_argument("--wal", choices=["on", "off"], default="on")
    ap.add_argument("--clients-messages", type=int, default=100_000)
    ap.add_argument("--clients-publishers", type=int, default=4)
    args = ap.parse_args()
    print(json.dumps({"machine": machine(), "edges": args.edges, "metrics_per_message": args.metrics,
                      "flush_interval": args.flush_interval, "wal": args.wal}), flush=True)
    work = Path(tempfile.mkdtemp(prefix="plantlink-mqtt-"))
    broker, port = start_broker(work)
    try:
        from plantlink.model import parse_plant

        plant = parse_plant(plant_yaml(port, args.edges, args.metrics), "bench")
        best = 0.0
        for i, rate in enumerate(float(x) for x in args.rates.split(",") if x):
            r = await run_load(args, port, broker, rate, plant)
            # sustained: keeps up with the offered rate, p99 to durable (fsynced in the log) within 500 ms
            ok = r["rate"] >= 0.95 * rate and r["p99_logged"] <= 500
            label = "target" if i == 0 else f"{rate / 1000:g}k"
            extra = {"offered": rate, "edges": args.edges, "metrics_per_message": args.metrics}
            emit(f"mqtt_ingest_{label}_samples_per_s", r["rate"], "samples/s", sustained=ok,
                 **({"target": 200_000} if i == 0 else {}), **extra)
            emit(f"mqtt_ingest_{label}_p50_ms", r["p50_logged"], "ms", point="historian write (after WAL fsync)")
            emit(f"mqtt_ingest_{label}_p99_ms", r["p99_logged"], "ms", point="historian write (after WAL fsync)",
                 **({"target": 500} if i == 0 else {}))
            emit(f"mqtt_ingest_{label}_p50_durable_ms", r["p50_durable"], "ms", point="historian flush returned",
                 flush_interval=args.flush_interval)
            emit(f"mqtt_ingest_{label}_p99_durable_ms", r["p99_durable"], "ms", point="historian flush returned",
                 flush_interval=args.flush_interval, max_ms=round(r["max_durable"], 1))
            emit(f"mqtt_ingest_{label}_cpu_central", r["central_cpu"], "% of one core",
                 broker=round(r["broker_cpu"], 1), edges=round(r["edges_cpu"], 1))
            emit(f"mqtt_ingest_{label}_cpu_broker", r["broker_cpu"], "% of one core")
            emit(f"mqtt_ingest_{label}_stored_of_sent", 100 * r["stored"] / max(r["sent"], 1), "%",
                 sent=r["sent"], stored=r["stored"], rebirths=r["rebirths"])
            if ok:
                best = max(best, r["rate"])
        nb_payload = ddata(metric_blocks(args.metrics, 0)[0], 1)
        msgs = mosquitto_clients(port, nb_payload, args.clients_messages, args.clients_publishers, work)
        emit("mqtt_ingest_mosquitto_clients_msgs_per_s", msgs, "messages/s", payload_bytes=len(nb_payload),
             publishers=args.clients_publishers)
        limit = msgs * args.metrics
        emit("mqtt_ingest_mosquitto_clients_samples_per_s", limit, "samples/s", metrics_per_message=args.metrics)
        emit("mqtt_ingest_max_sustained_samples_per_s", best, "samples/s",
             ratio=round(best / limit, 3) if limit else None, of="mosquitto_pub/mosquitto_sub on the same broker")
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
