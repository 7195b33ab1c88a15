"""JetStream -> historian ingest with 1, 2 and 4 ``plantlink ingest`` workers (issue 14 items 4 and 7).

For each worker count: a fresh nats-server (JetStream, file store), ``--sites`` sites of ``--tags`` tags, the
workers started as subprocesses (each its own DuckDB historian) and left to spread the sites over themselves
(site leases); then ``--batches`` Arrow IPC batches of ``--rows`` samples per site are published (native NATS,
with message ids) and the rate is the samples divided by the time from the first publish to every site consumer
drained (every batch stored, flushed and acknowledged). Needs /usr/sbin/nats-server.

    .venv/bin/python -m bench.nats_ingest [--workers 1 2 4] [--sites 4] [--batches 50] [--rows 5000]

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import numpy as np
from tests.edge.harness import Proc
from tests.ingest.natsserver import NatsServer
from tests.plants import plant_yaml, site_yaml

from plantlink.edge.payload import PathTable
from plantlink.ingest.stream import STREAM, consumer_name, ensure_stream, publish_batch
from plantlink.ingest.worker import STATUS_FILE
from plantlink.samples import numeric_batch

T0_US = (time.time_ns() // 10**9 - 3600) * 10**6


def _figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 1), "unit": unit}), flush=True)


async def _until(cond: Any, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} not reached in {timeout} s")
        await asyncio.sleep(0.01)


def _plant(d: Path, sites: list[str], tags: int) -> Path:
    machines = "- name: m1\n  tags:\n" + "".join(f"    - {{name: t{i}, source: {{device: plc, address: {i}}}}}\n"
                                                 for i in range(tags))
    path = d / "plant.yaml"
    path.write_text(plant_yaml("plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}",
                               sites="".join(site_yaml(machines, site=s) for s in sites)))
    return path


def _owned(d: Path) -> set[str]:
    try:
        st = json.loads((d / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return set()
    return {s for s, v in st["sites"].items() if v["owned"]}


def _payloads(site: str, tags: int, batches: int, rows: int) -> list[bytes]:
    table = PathTable({i + 1: f"{site}/a1/l1/m1/t{i}" for i in range(tags)})
    out = []
    for b in range(batches):
        k = np.arange(b * rows, (b + 1) * rows)
        batch = numeric_batch((k % tags + 1).astype(np.uint32), T0_US + k * 1000, k.astype(np.float64), 192)
        out.append(table.encode("bench", b + 1, batch, "ep"))
    return out


async def run(workers: int, args: argparse.Namespace, d: Path) -> None:
    sites = [f"s{i}" for i in range(args.sites)]
    plant = _plant(d, sites, args.tags)
    server = NatsServer(d / "nats")
    await server.start()
    procs = [Proc(["ingest", str(plant), "--nats", server.url, "--data-dir", str(d / f"w{i}"), "--worker",
                   f"w{i}", "--ack-wait", "1.5", "--lease-ttl", "4", "--batch", str(args.fetch)], d / f"w{i}.log")
             for i in range(workers)]
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    try:
        await ensure_stream(js)
        for p in procs:
            p.start()
        share = -(-len(sites) // workers)

        def balanced() -> bool:
            owned = [_owned(d / f"w{i}") for i in range(workers)]
            return set().union(*owned) == set(sites) and all(0 < len(o) <= share for o in owned)

        await _until(balanced, "the sites spread over the workers", 120)
        payloads = {s: _payloads(s, args.tags, args.batches, args.rows) for s in sites}
        t0 = time.perf_counter()
        for b in range(args.batches):
            for s in sites:
                await publish_batch(js, s, "bench", b + 1, payloads[s][b], "ep")
        published = time.perf_counter() - t0

        async def drained() -> bool:
            infos = [await js.consumer_info(STREAM, consumer_name(s)) for s in sites]
            return all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos)

        await _until(drained, "every batch stored")
        took = time.perf_counter() - t0
    finally:
        await nc.close()
        for p in procs:
            p.stop()
        await server.stop()
    total = args.sites * args.batches * args.rows
    _figure(f"nats ingest, {workers} worker(s), {args.sites} sites, {total} samples in batches of {args.rows}",
            total / took, "samples/s")
    _figure(f"nats publish (native, acknowledged one by one), {workers} worker(s) running", total / published,
            "samples/s")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--tags", type=int, default=20)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--fetch", type=int, default=32)
    args = ap.parse_args()
    for w in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            await run(w, args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
