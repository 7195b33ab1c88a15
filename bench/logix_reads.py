"""Logix connector throughput: tag reads per second over one EtherNet/IP connection, against the simulator's
Logix controller (cm-ethernetip, in another process) and cpppo's Logix simulator (another process). Tags are
DINTs read by name in multi-service packets cut to the connection (4002 bytes, and 504 as an older controller
grants); the connector polls as fast as it can (poll 1 ms). Prints one JSON line per figure.

    .venv/bin/python bench/logix_reads.py [--tags 500] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

from plantlink.connectors.base import Point
from plantlink.connectors.logix.client import LogixConnector
from plantlink.model import parse_plant

CM_SERVER = """
import asyncio, sys
from plantlink.sim.logixserver import Controller
async def main():
    c = Controller()
    for i in range(int(sys.argv[2])):
        c.add(f"T{i}", "DINT")
        c.set(f"T{i}", i)
    await c.start("127.0.0.1", int(sys.argv[1]))
    print("up", flush=True)
    await asyncio.to_thread(sys.stdin.read)
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plant(port: int, tags: int, size: int) -> str:
    lines = ["enterprise: Bench", "devices:",
             f"  plc: {{protocol: logix, host: 127.0.0.1, port: {port}, poll: 1ms, timeout: 5s, "
             f"connection_size: {size}}}",
             "sites:", "  - name: s", "    timezone: UTC", "    areas:", "      - name: a", "        lines:",
             "          - name: l", "            machines:", "              - name: m", "                tags:"]
    lines += [f"                  - {{name: t{i}, source: {{device: plc, tag: T{i}, type: DINT}}}}"
              for i in range(tags)]
    return "\n".join(lines) + "\n"


async def measure(port: int, tags: int, size: int, window: float) -> float:
    p = parse_plant(plant(port, tags, size))
    points = [Point(i, t.path, t.tag, t.source) for i, t in enumerate(p.tags_of_device("plc"), 1)]
    rows = [0]
    conn = LogixConnector("plc", p.devices["plc"].config, points,
                          lambda b: rows.__setitem__(0, rows[0] + b.num_rows))
    await conn.start()
    try:
        while not conn.health.ok:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # the first cycle learns every tag's type one by one
        n0, t0 = rows[0], time.perf_counter()
        await asyncio.sleep(window)
        return (rows[0] - n0) / (time.perf_counter() - t0)
    finally:
        await conn.stop()


def serve(kind: str, port: int, tags: int) -> subprocess.Popen[str]:
    if kind == "cm":
        srv = subprocess.Popen([sys.executable, "-c", CM_SERVER, str(port), str(tags)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        assert srv.stdout is not None and srv.stdout.readline().strip() == "up"
        return srv
    srv = subprocess.Popen([sys.executable, "-m", "cpppo.server.enip", "--address", f"127.0.0.1:{port}",
                            *[f"T{i}=DINT" for i in range(tags)]], stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.1)
    return srv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", type=int, default=500)
    ap.add_argument("--window", type=float, default=10.0)
    a = ap.parse_args()
    for kind, sizes in (("cm", (4002, 504)), ("cpppo", (4002,))):
        port = free_port()
        srv = serve(kind, port, a.tags)
        try:
            for size in sizes:
                rate = asyncio.run(measure(port, a.tags, size, a.window))
                print(json.dumps({"name": f"logix_tag_reads_{kind}_conn{size}", "value": round(rate, 1),
                                  "unit": "tags/s", "tags": a.tags}), flush=True)
        finally:
            if kind == "cm" and srv.stdin is not None:
                srv.stdin.close()
            else:
                srv.terminate()
            srv.wait(30)


if __name__ == "__main__":
    main()
