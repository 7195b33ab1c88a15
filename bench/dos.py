"""Denial of service: what a login flood and slow clients cost the people already logged in (issue 8, items 7
and 9). Runs ``plantlink run`` in a child process fed by a loopback OPC UA server, with the attackers in other
processes at the lowest CPU priority (in a plant they are other machines). Prints one JSON line per figure.

    .venv/bin/python bench/dos.py [--only flood|slow]

* login flood: 200 bad logins at once, each retried when answered, from 40 addresses, at the default argon2
  cost, in four 6-s windows alternating with 6-s windows without it; p99 of an authenticated ``GET
  /api/v1/values`` without and with the flood (target: the flood adds at most 100 ms), the server's memory
  growth, how the flood was answered;
* slow clients: 2,000 connections that never finish their request head (from 40 addresses, re-opened when
  closed) against the server limited to 1,024 open files; normal requests' times, the connector's reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.dos import test_login_flood, test_slow_clients
from tests.dos.harness import percentile


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 1), "unit": unit, **extra}), flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 1) for x in os.getloadavg()]}


async def flood() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = await test_login_flood.measure(Path(tmp))
    base, flooded = m.p99("baseline") * 1000, m.p99("flooded") * 1000
    seconds = test_login_flood.ROUNDS * (test_login_flood.WINDOW_S + 1)
    emit("login_flood_authenticated_p99", flooded, "ms", baseline_p99=round(base, 1),
         added_p99=round(flooded - base, 1), p50=round(percentile(m.flooded, 50) * 1000, 1),
         requests=len(m.flooded), target="flood adds <= 100 ms at p99", machine=machine())
    emit("login_flood_rss_growth", (m.rss_peak - m.rss_before) / 2**20, "MiB", before=round(m.rss_before / 2**20),
         target="bounded (argon2: 64 MiB a check)")
    emit("login_flood_answered", m.flood["sent"] / seconds, "requests/s", statuses=m.flood["statuses"],
         concurrency=200, addresses=40)


async def slow() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = await test_slow_clients.measure(Path(tmp))
    connector = (m.status or {}).get("connectors", {}).get("ua", {})
    emit("slow_clients_normal_request_max", max(m.took) * 1000, "ms", p50=round(percentile(m.took, 50) * 1000, 1),
         requests=len(m.took), slow_connections=test_slow_clients.SLOW, opened=m.counts["opened"],
         open_file_limit=1024, connector_reconnects=connector.get("reconnects"), machine=machine())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["flood", "slow"])
    args = ap.parse_args()
    if args.only in (None, "flood"):
        asyncio.run(flood())
    if args.only in (None, "slow"):
        asyncio.run(slow())


if __name__ == "__main__":
    main()
