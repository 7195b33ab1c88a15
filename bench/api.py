"""API benchmarks; one JSON line per figure ({"name", "value", "unit"}).

(a) trend: GET /api/v1/history/downsample for one tag over 7 days of 1 Hz data (604,800 points, plus
    neighbour tags in the same DuckDB historian) reduced to 1000 points; p50/p99 over 50 requests through a
    real uvicorn server (target <= 150 ms).
(b) live: a 5,000-tag plant (200 machines x 25 tags) updating at 1 Hz with state changes; 200 WebSocket
    clients each subscribed to one machine and 20 subscribed to every machine's state, in a separate process.
    Latency = client receive time - sample timestamp, where the sample timestamp is the PUBLISH time (the
    batch is stamped just before it enters the runtime, ``runtime.ingest``: through the write-ahead log, as
    connectors deliver, unless --wal off); p50/p99 (target p99 <= 100 ms on 2 cores, issue 9). The clients
    share one address, so the server's per-address connection limit is raised for them (its default, 128,
    would refuse 92 of the 220). A figure with no messages is null; ``clients_failed`` counts clients that
    could not connect. --batches N splits each
    second's 5,000 samples into N batches spread over the second (connectors deliver a batch per poll or
    publish response), 1 by default.

    .venv/bin/python bench/api.py [--only trend|live] [--seconds 30] [--wal on|off] [--batches 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plantlink.api.connections import ConnectionLimits  # noqa: E402
from plantlink.api.server import serve  # noqa: E402
from plantlink.identity import Principal  # noqa: E402
from plantlink.model import parse_plant  # noqa: E402
from plantlink.runtime import Runtime  # noqa: E402
from plantlink.samples import now_us, numeric_batch  # noqa: E402
from plantlink.wal import WalSettings  # noqa: E402

ADMIN = Principal("bench", {"*": "admin"})


def emit(name: str, value: float | None, unit: str, **extra: Any) -> None:
    """One JSON line; a figure that could not be measured (no messages) is null, never NaN (not JSON)."""
    v = None if value is None or not math.isfinite(value) else round(value, 3)
    print(json.dumps({"name": name, "value": v, "unit": unit, "load_avg_1m": round(os.getloadavg()[0], 1),
                      **{k: _finite(x) for k, x in extra.items()}}, allow_nan=False), flush=True)


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def install_admin(app: Any) -> None:
    class Admin:
        def __init__(self, inner: Any):
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket"):
                scope.setdefault("state", {})["principal"] = ADMIN
            await self.inner(scope, receive, send)

    app.add_middleware(Admin)


def plant_yaml(machines: int, tags: int, states: bool, lines: int = 10) -> str:
    out = ["enterprise: Bench", "devices:", "  plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}",
           "sites:", "  - name: s1", "    timezone: UTC", "    areas:", "      - name: a1", "        lines:"]
    per_line = max(machines // lines, 1)
    for ln in range(lines):
        out += [f"          - name: l{ln}", "            machines:"]
        for m in range(per_line):
            out.append(f"              - name: m{m}")
            if states:
                out.append("                states: {state_tag: t0}")
            out.append("                tags:")
            for t in range(tags):
                out.append(f"                  - {{name: t{t}, source: {{device: plc, address: {t}}}}}")
        if ln * per_line + per_line >= machines:
            break
    return "\n".join(out) + "\n"


# -- (a) trend -------------------------------------------------------------------------------------------
async def bench_trend(requests: int = 50) -> None:
    import httpx

    plant = parse_plant(plant_yaml(1, 4, states=False, lines=1), "bench.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(plant, tmp, flush_interval=3600)
        await rt.start()
        assert rt.historian is not None
        end = now_us() // 1_000_000 * 1_000_000
        n = 7 * 86400
        ts = end - n * 1_000_000 + np.arange(n, dtype=np.int64) * 1_000_000
        t0 = time.perf_counter()
        ids = list(rt.tag_ids.values())
        rng = np.random.default_rng(1)
        for k, tid in enumerate(ids):
            walk = np.cumsum(rng.normal(0, 0.1, n)) + 50 + 10 * np.sin(np.arange(n) / (3600 * (k + 1)))
            for lo in range(0, n, 200_000):
                rt.historian.write(numeric_batch(np.full(min(200_000, n - lo), tid), ts[lo:lo + 200_000],
                                                 walk[lo:lo + 200_000], 192))
        await asyncio.to_thread(rt.historian.flush)
        emit("api.trend.load_rows", float(n * len(ids)), "rows", seconds=round(time.perf_counter() - t0, 1))
        server = await serve(rt, "127.0.0.1", 0, app_hook=install_admin)
        tag = next(iter(rt.tag_ids))
        url = f"{server.url}/api/v1/history/downsample?tag={tag}&start={int(ts[0]) // 1000}&end={end // 1000}&n=1000"
        times = []
        try:
            async with httpx.AsyncClient(timeout=30) as c:
                warm = await c.get(url)
                assert warm.status_code == 200, warm.text
                points = warm.json()["count"]
                for _ in range(requests):
                    s = time.perf_counter()
                    r = await c.get(url)
                    times.append((time.perf_counter() - s) * 1000)
                    assert r.status_code == 200
        finally:
            await server.stop()
            await rt.stop()
    q = np.percentile(times, [50, 99])
    emit("api.trend.7d_1hz_to_1000.p50", float(q[0]), "ms", points_in=n, points_out=points)
    emit("api.trend.7d_1hz_to_1000.p99", float(q[1]), "ms", requests=requests, target_ms=150)


# -- (b) live --------------------------------------------------------------------------------------------
async def bench_live(seconds: float, wal: bool = True, batches: int = 1) -> None:
    machines, tags_per = 200, 25
    plant = parse_plant(plant_yaml(machines, tags_per, states=True), "bench.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(plant, tmp, flush_interval=1.0, wal=WalSettings(enabled=wal))
        await rt.start()
        # all 220 clients come from one address: lift the per-address guard (128) that would refuse 92 of them
        server = await serve(rt, "127.0.0.1", 0, app_hook=install_admin, limits=ConnectionLimits(per_address=1024))
        mpaths = [p for p, _ in plant.machines()]
        ids = np.array([rt.tag_ids[t.path] for t in plant.tags], dtype=np.uint32)
        changes = [0]
        assert rt.states is not None
        rt.states.add_listener(lambda ch: changes.__setitem__(0, changes[0] + 1))
        state_pos = np.array([i for i, t in enumerate(plant.tags) if t.tag.name == "t0"])
        proc = subprocess.Popen(
            [sys.executable, __file__, "--clients", str(server.port), "--seconds", str(seconds + 5),
             "--machines", json.dumps(mpaths)], stdout=subprocess.PIPE, text=True)
        rng = np.random.default_rng(2)
        values = rng.normal(50, 5, ids.size)
        states = np.ones(state_pos.size)
        lags: list[float] = []

        async def lag_probe() -> None:
            while True:
                s = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append((time.perf_counter() - s - 0.01) * 1000)

        probe = asyncio.create_task(lag_probe())
        try:
            await asyncio.sleep(4)  # clients connect and subscribe
            lags.clear()
            cpu0, loop0 = time.process_time(), time.thread_time()  # this thread is the event loop's
            start = time.monotonic()
            tick = 0
            while time.monotonic() - start < seconds:
                values += rng.normal(0, 0.5, ids.size)
                flip = rng.random(states.size) < 0.05  # ~10 machines change state per second
                states[flip] = np.where(states[flip] == 1, 0, 1)
                values[state_pos] = states
                for i, part in enumerate(np.array_split(np.arange(ids.size), batches)):
                    await asyncio.sleep(max(0.0, start + tick + i / batches - time.monotonic()))
                    rt.ingest(numeric_batch(ids[part], now_us(), values[part], 192))
                tick += 1
                await asyncio.sleep(max(0.0, start + tick - time.monotonic()))
            probe.cancel()
            elapsed = time.monotonic() - start
            cpu = {"loop": (time.thread_time() - loop0) / elapsed, "process": (time.process_time() - cpu0) / elapsed}
            wal_status = rt.wal.status() if rt.wal is not None else {}
            out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            hub = server.app.state.live
            dropped, bus_dropped = hub.dropped, hub.bus_dropped
            await server.stop()
            await rt.stop()
    res = json.loads(out.strip().splitlines()[-1])
    run = {"wal": "on" if wal else "off", "batches_per_s": batches}
    emit("api.live.event_loop_lag.p99", float(np.percentile(lags, 99)), "ms", max=round(max(lags), 1), **run)
    # CPU shares depend little on the machine's load, unlike latencies: what the event loop's thread spends
    emit("api.live.event_loop_cpu", 100 * cpu["loop"], "% of one core", process_pct=round(100 * cpu["process"], 1),
         **run)
    emit("api.live.5000tags_220clients.values.p50", res["values_p50"], "ms", messages=res["values_n"], **run)
    emit("api.live.5000tags_220clients.values.p99", res["values_p99"], "ms", target_ms=100,
         dropped_clients=dropped, hub_batches_dropped=bus_dropped, **run)
    emit("api.live.5000tags_220clients.states.p99", res["states_p99"], "ms", messages=res["states_n"],
         p50=res["states_p50"], state_changes=changes[0], clients_failed=res["clients_failed"],
         first_failure=res["first_failure"], **run)
    if wal_status:
        emit("api.live.wal.commit.p50", wal_status["commit_p50_ms"], "ms", **run)
        emit("api.live.wal.commit.p99", wal_status["commit_p99_ms"], "ms", fsync_p99_ms=wal_status["fsync_p99_ms"],
             fsyncs=wal_status["fsyncs"], **run)


async def run_clients(port: int, seconds: float, machines: list[str]) -> None:
    """Client process: 200 machine subscribers + 20 state subscribers; prints the latency summary."""
    import websockets

    values: list[float] = []
    states: list[float] = []

    async def client(spec: dict[str, Any]) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/stream", max_size=2**24) as ws:
            await ws.send(json.dumps({"subscribe": spec}))
            stop = time.time() + seconds
            while time.time() < stop:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.1, stop - time.time()))
                except TimeoutError:
                    break
                got = time.time() * 1000
                msg = json.loads(raw)
                if msg.get("snapshot"):
                    continue
                if msg["type"] == "values":
                    values.append(got - msg["values"][0]["ts_ms"])
                elif msg["type"] == "state":
                    states.append(got - msg["since_ms"])
                elif msg["type"] == "states":  # several changes of one engine step
                    states.extend(got - r["since_ms"] for r in msg["states"])

    specs: list[dict[str, Any]] = [{"machines": [m]} for m in machines[:200]]
    specs += [{"states": True} for _ in range(20)]
    done = await asyncio.gather(*(client(s) for s in specs), return_exceptions=True)
    failed = [repr(x) for x in done if isinstance(x, BaseException)]

    def pct(xs: list[float], q: float) -> float | None:
        return float(np.percentile(xs, q)) if xs else None

    print(json.dumps({"values_n": len(values), "values_p50": pct(values, 50), "values_p99": pct(values, 99),
                      "states_n": len(states), "states_p50": pct(states, 50), "states_p99": pct(states, 99),
                      "values_mean": statistics.fmean(values) if values else None, "clients_failed": len(failed),
                      "first_failure": failed[0] if failed else None}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["trend", "live"])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--wal", choices=["on", "off"], default="on", help="live: through the write-ahead log or not")
    ap.add_argument("--batches", type=int, default=1, help="live: batches per second (the 5,000 samples split)")
    ap.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--machines", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.clients:
        asyncio.run(run_clients(args.clients, args.seconds, json.loads(args.machines)))
        return
    emit("machine.cpus", float(os.cpu_count() or 0), "cores")
    if args.only in (None, "trend"):
        asyncio.run(bench_trend())
    if args.only in (None, "live"):
        asyncio.run(bench_live(args.seconds, args.wal == "on", args.batches))


if __name__ == "__main__":
    main()
