"""The edge's store-and-forward drain rate after an outage, through a local Mosquitto (issue 12).

A central (``Runtime`` with ``edges:``, its historian and write-ahead log) and an edge (``EdgeNode``, fed
directly) in one process; the broker is stopped, the edge queues ``--samples`` samples on disk in batches of
``--batch``, the broker is started again. The drain rate is the backlog divided by the time from the edge's
reconnection to the last batch durable at the central (logged in its write-ahead log and acknowledged).
Needs /usr/sbin/mosquitto.

    .venv/bin/python -m bench.edge_drain [--samples 200000] [--batch 1000]

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

from tests.connectors.mosquitto import MosquittoServer
from tests.edge.harness import burst, central_yaml, edge_yaml, free_port

from plantlink.edge.node import EdgeNode
from plantlink.model import parse_plant
from plantlink.runtime import Runtime


def _figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 1), "unit": unit}), flush=True)


async def _until(cond: object, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} not reached in {timeout} s")
        await asyncio.sleep(0.005)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "broker").mkdir()
        broker = MosquittoServer(free_port(), d / "broker", persistence=True)
        await broker.start()
        central = Runtime(parse_plant(central_yaml(broker.port)), d / "central", flush_interval=1.0)
        edge = EdgeNode(parse_plant(edge_yaml(broker.port, 1, enabled=False)), d / "edge")
        await central.start()
        await edge.start()
        rx = central.edge_receiver
        assert rx is not None
        try:
            await _until(lambda: edge.forwarder.central_seen, "the edge sees the central")
            await broker.stop()  # the outage
            await _until(lambda: not edge.forwarder.connected, "the edge sees the outage")
            n = 0
            while n < args.samples:
                edge.ingest(burst(n, args.batch))
                n += args.batch
                if n % (50 * args.batch) == 0:
                    await _until(lambda n=n: edge.queue.committed_rows >= n - args.batch, "the backlog on disk")
            await _until(lambda: edge.queue.committed_rows == n, "the backlog on disk")
            _figure("edge_queue_mqtt_backlog_bytes", edge.queue.wal.used_bytes, "bytes")
            await broker.start()
            await _until(lambda: edge.forwarder.central_seen, "the edge reconnected")
            t0 = time.perf_counter()
            await _until(lambda: rx.counts.get("e1", {}).get("rows", 0) >= n, "the backlog durable at the central")
            dt = time.perf_counter() - t0
            _figure("edge_drain_mqtt_samples_per_s", n / dt, "samples/s")
            _figure("edge_drain_mqtt_batches_per_s", n / args.batch / dt, "batches/s")
        finally:
            await edge.stop()
            await central.stop()
            await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
