"""S7 connector throughput: tag reads per second over one S7 connection, against python-snap7's server in
another process (PDU 240 and 480 as negotiated with it). Tags are REALs in one DB, every ``--stride`` bytes, so
they join into ranges cut at the PDU's item size and packed into multi-item requests; the connector polls as
fast as it can (poll 1 ms). Prints one JSON line per figure.

    .venv/bin/python bench/s7_reads.py [--tags 1000] [--stride 4] [--window 10]
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
from plantlink.connectors.s7.client import S7Connector
from plantlink.model import parse_plant

SERVER = """
import sys, time
from snap7.server import Server
from snap7.type import SrvArea
srv = Server(log=False)
buf = bytearray(int(sys.argv[2]))
srv.register_area(SrvArea.DB, 1, buf)
srv.start_to("127.0.0.1", int(sys.argv[1]))
print("up", flush=True)
sys.stdin.read()
srv.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plant(port: int, tags: int, stride: int, pdu: int) -> str:
    lines = ["enterprise: Bench", "devices:",
             f"  plc: {{protocol: s7, host: 127.0.0.1, port: {port}, poll: 1ms, timeout: 2s, pdu_size: {pdu}}}",
             "sites:", "  - name: s", "    timezone: UTC", "    areas:", "      - name: a", "        lines:",
             "          - name: l", "            machines:", "              - name: m", "                tags:"]
    lines += [f"                  - {{name: t{i}, source: {{device: plc, address: DB1.DBD{i * stride}, type: REAL}}}}"
              for i in range(tags)]
    return "\n".join(lines) + "\n"


async def measure(port: int, tags: int, stride: int, pdu: int, window: float) -> dict[str, float]:
    p = parse_plant(plant(port, tags, stride, pdu))
    points = [Point(i, t.path, t.tag, t.source) for i, t in enumerate(p.tags_of_device("plc"), 1)]
    rows = [0]
    conn = S7Connector("plc", p.devices["plc"].config, points, lambda b: rows.__setitem__(0, rows[0] + b.num_rows))
    await conn.start()
    try:
        while not conn.health.ok:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        n0, t0 = rows[0], time.perf_counter()
        await asyncio.sleep(window)
        n1, t1 = rows[0], time.perf_counter()
        requests = sum(len(pl.group.requests) for pl in conn.pollers)
        return {"rate": (n1 - n0) / (t1 - t0), "requests": requests, "pdu": conn.pdu}
    finally:
        await conn.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--window", type=float, default=10.0)
    a = ap.parse_args()
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(a.tags * a.stride + 8)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None and srv.stdout.readline().strip() == "up"
        for pdu in (240, 480):
            r = asyncio.run(measure(port, a.tags, a.stride, pdu, a.window))
            print(json.dumps({"name": f"s7_tag_reads_pdu{r['pdu']:g}", "value": round(r["rate"], 1),
                              "unit": "tags/s", "tags": a.tags, "requests_per_cycle": r["requests"]}), flush=True)
    finally:
        if srv.stdin is not None:
            srv.stdin.close()
        srv.wait(10)


if __name__ == "__main__":
    main()
