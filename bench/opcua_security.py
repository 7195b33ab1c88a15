"""What OPC UA security costs: connect time and CPU per sample, security: none against the default.

The default (SignAndEncrypt with Basic256Sha256, the server's certificate trusted at first use) against
``security: none``, on the same asyncua server (bench/servers.py --secure, its own process):

* connect: time from ``start()`` to the first value, for ``none``, for the default at the first start on a
  fresh data directory (this includes generating plantlink's 2048-bit client key and recording the server's
  certificate) and for the default at a later start; median of ``--repeat``;
* ingest: samples/s stored and the CPU of this process for ``--tags`` OPC UA tags at 1 Hz, both ways.

Prints one JSON line per figure.

    .venv/bin/python bench/opcua_security.py [--repeat 5] [--tags 2000] [--window 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from pipeline import emit, measure, plant_yaml, start_servers
from plantlink.connectors.base import Point
from plantlink.connectors.opcua import OpcUaConnector
from plantlink.model import parse_plant


async def time_to_first_value(port: int, security: str, data_dir: Path) -> float:
    plant = parse_plant(plant_yaml(1, port, 0, 10, 1.0, security), "bench")  # no Modbus tags: no Modbus device
    tags = plant.tags_of_device("ua")
    points = [Point(i, t.path, t.tag, t.source) for i, t in enumerate(tags)]
    got = asyncio.Event()
    conn = OpcUaConnector("ua", plant.devices["ua"].config, points, lambda batch: got.set())
    conn.data_dir = data_dir
    t0 = time.perf_counter()
    await conn.start()
    try:
        await asyncio.wait_for(got.wait(), timeout=60)
        return time.perf_counter() - t0
    finally:
        await conn.stop()


async def connect_times(repeat: int) -> dict[str, list[float]]:
    proc, _, port = start_servers(1, 10, 1.0, secure=True)
    out: dict[str, list[float]] = {"none": [], "default_first_start": [], "default_later_start": []}
    try:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="plantlink-bench-") as tmp:
                out["none"].append(await time_to_first_value(port, "none", Path(tmp)))
                out["default_first_start"].append(await time_to_first_value(port, "default", Path(tmp)))
                out["default_later_start"].append(await time_to_first_value(port, "default", Path(tmp)))
    finally:
        proc.kill()
        proc.wait()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tags", type=int, default=2000, help="OPC UA tags at 1 Hz for the ingest figures")
    ap.add_argument("--window", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=6.0)
    args = ap.parse_args()
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_average": os.getloadavg()}}), flush=True)
    for name, times in (await connect_times(args.repeat)).items():
        emit(f"opcua_connect_{name}", 1000 * statistics.median(times), "ms", runs=len(times),
             max=round(1000 * max(times), 1))
    for security in ("none", "default"):
        r = await measure(1, args.tags, 1.0, args.warmup, args.window, security)  # + 1 Modbus tag
        emit(f"opcua_ingest_{security}_rate", r["rate"], "samples/s", offered=r["offered"])
        emit(f"opcua_ingest_{security}_cpu_per_sample", 1e6 * r["cpu_pct_of_core"] / 100 / max(r["rate"], 1),
             "us/sample", cpu_pct_of_core=round(r["cpu_pct_of_core"], 1))


if __name__ == "__main__":
    asyncio.run(main())
