"""End-to-end pipeline benchmark: OPC UA and Modbus servers (another process) -> connectors -> bus -> historian.

Measures the samples/s stored and the CPU plantlink spends on it (this process only: the servers run in a
child process). First the target load (10,000 samples/s: half the tags over Modbus, half over OPC UA, at
1 Hz), then rising rates to find the highest rate sustained (stored >= 95 % of offered, CPU < 90 % of the
2 cores). Prints one JSON line per figure.

The OPC UA device connects with ``security: none`` (as the figures in docs/benchmarks.md were measured);
``--opcua-security default`` measures plantlink's default instead (SignAndEncrypt with Basic256Sha256, the
server's certificate trusted at first use). Samples go through the write-ahead log (the default); --wal off
measures without it.

    .venv/bin/python bench/pipeline.py [--tags 10000] [--window 20] [--ramp 2,4,8] [--opcua-security default]
                                       [--wal on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.wal import WalSettings

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plant_yaml(modbus_port: int, opcua_port: int, registers: int, variables: int, rate: float,
               security: str = "none") -> str:
    period = f"{1000.0 / rate:g}ms"
    ua_security = ", security: none" if security == "none" else ""
    lines = [
        "enterprise: Bench",
        "devices:",
        f"  mb: {{protocol: modbus, host: 127.0.0.1, port: {modbus_port}, poll: {period}, timeout: 2s}}",
        f"  ua: {{protocol: opcua, endpoint: 'opc.tcp://127.0.0.1:{opcua_port}/bench/',"
        f" sampling_interval: {period}, publishing_interval: {period}{ua_security}}}",
        "sites:",
        "  - name: s",
        "    timezone: America/Toronto",
        "    areas:",
        "      - name: a",
        "        lines:",
        "          - name: l",
        "            machines:",
    ]
    per_machine = 100
    for m in range(0, registers, per_machine):
        lines += [f"              - name: mb{m // per_machine}", "                tags:"]
        for i in range(m, min(m + per_machine, registers)):
            lines.append(f"                  - {{name: r{i}, source: {{device: mb, address: {i}}}}}")
    for m in range(0, variables, per_machine):
        lines += [f"              - name: ua{m // per_machine}", "                tags:"]
        for i in range(m, min(m + per_machine, variables)):
            lines.append(f"                  - {{name: v{i}, source: {{device: ua, node: 'ns=2;s=V{i}'}}}}")
    return "\n".join(lines) + "\n"


def start_servers(registers: int, variables: int, rate: float,
                  secure: bool = False) -> tuple[subprocess.Popen[str], int, int]:
    mp, up = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "servers.py"), "--modbus-port", str(mp), "--opcua-port", str(up),
         "--registers", str(registers), "--variables", str(variables), "--rate", str(rate),
         *(["--secure"] if secure else [])],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("{"):
        proc.kill()
        raise RuntimeError("bench servers did not start")
    return proc, mp, up


async def measure(registers: int, variables: int, rate: float, warmup: float, window: float,
                  security: str = "none", wal: bool = True) -> dict[str, float]:
    proc, mp, up = start_servers(registers, variables, rate, secure=security != "none")
    try:
        plant = parse_plant(plant_yaml(mp, up, registers, variables, rate, security), "bench")
        with tempfile.TemporaryDirectory(prefix="plantlink-bench-") as tmp:
            runtime = Runtime(plant, tmp, wal=WalSettings(enabled=wal))
            await runtime.start()
            await asyncio.sleep(warmup)
            assert runtime.writer is not None
            s0, c0, t0 = runtime.writer.received, time.process_time(), time.perf_counter()
            await asyncio.sleep(window)
            s1, c1, t1 = runtime.writer.received, time.process_time(), time.perf_counter()
            await runtime.stop()
            status = runtime.status()
    finally:
        proc.kill()
        proc.wait()
    elapsed = t1 - t0
    offered = (registers + variables) * rate
    return {
        "offered": offered,
        "rate": (s1 - s0) / elapsed,
        "cpu_pct_of_core": 100.0 * (c1 - c0) / elapsed,
        "stored": float(status["samples_stored"]),
        "received": float(status["historian_status"]["received"]),
    }


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(value, 2), "unit": unit, **extra}), flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=10_000, help="tags at the target load (half Modbus, half OPC UA)")
    ap.add_argument("--window", type=float, default=20.0, help="seconds measured per load")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--ramp", default="2,5,10", help="Modbus rates (Hz) to try for the highest sustained rate")
    ap.add_argument("--opcua-security", choices=["none", "default"], default="none",
                    help="the OPC UA device's security: none, or plantlink's default (SignAndEncrypt)")
    ap.add_argument("--wal", choices=["on", "off"], default="on", help="through the write-ahead log or not")
    args = ap.parse_args()
    wal = args.wal == "on"
    half = args.tags // 2
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}), flush=True)

    r = await measure(half, args.tags - half, 1.0, args.warmup, args.window, args.opcua_security, wal)
    emit("pipeline_target_rate", r["rate"], "samples/s", target=args.tags, offered=r["offered"],
         opcua_security=args.opcua_security, wal=args.wal)
    emit("pipeline_target_cpu", r["cpu_pct_of_core"], "% of one core", target=25, wal=args.wal)
    emit("pipeline_target_cpu_per_sample", 1e6 * r["cpu_pct_of_core"] / 100 / max(r["rate"], 1), "us/sample",
         wal=args.wal)

    best = r["rate"]
    for hz in [float(x) for x in args.ramp.split(",") if x]:
        # Higher rates: Modbus carries the extra load (an asyncua server cannot rewrite more variables/s here).
        r = await measure(args.tags, 0, hz, args.warmup / 2, args.window / 2, args.opcua_security, wal)
        ok = r["rate"] >= 0.95 * r["offered"] and r["cpu_pct_of_core"] < 90
        emit(f"pipeline_modbus_{hz:g}hz_rate", r["rate"], "samples/s", offered=r["offered"], sustained=ok,
             cpu_pct_of_core=round(r["cpu_pct_of_core"], 1), wal=args.wal)
        if ok:
            best = max(best, r["rate"])
        else:
            break
    emit("pipeline_max_sustained_rate", best, "samples/s")


if __name__ == "__main__":
    asyncio.run(main())
