"""The MQTT publishers' bus side, no broker: batches of samples coalesced to the last value per tag (vectorised)
and made pending, then the UNS JSON payloads and one Sparkplug NDATA built from them. Then the UNS publisher
through a local Mosquitto (when /usr/sbin/mosquitto exists), QoS 0 and 1: one message per tag, sent one
after the other, where the client library's round trips dominate.

    .venv/bin/python bench/mqtt_publish.py [--tags 1000] [--rows 20000] [--batches 200]

Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from plantlink.bus import InProcBus
from plantlink.connectors.mqtt.sparkplug import sparkplug_b_pb2 as pb
from plantlink.model.publish import PublishSettings
from plantlink.publish.coalesce import last_values
from plantlink.publish.sparkplug_edge import DATATYPES, _set_value
from plantlink.publish.uns import UnsPublisher, payload_of, targets_of
from plantlink.samples import Quality, numeric_batch


def _figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 1), "unit": unit}))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batches", type=int, default=200)
    args = ap.parse_args()
    settings = PublishSettings(mqtt="mqtt://127.0.0.1:1", sparkplug={"group": "G"})
    tags = [(i, f"s/a/l/m{i // 50}/t{i}", "degC", "float") for i in range(1, args.tags + 1)]
    targets = targets_of(settings, "Bench", tags)
    pub = UnsPublisher(settings, targets, InProcBus())
    rng = np.random.default_rng(1)
    batches = [numeric_batch(rng.integers(1, args.tags + 1, args.rows).astype(np.uint32),
                             1_795_000_000_000_000 + np.arange(args.rows, dtype=np.int64),
                             rng.normal(size=args.rows), Quality.GOOD) for _ in range(args.batches)]
    t0 = time.perf_counter()
    for b in batches:
        pub.offer(last_values(b, pub.selected))
    dt = time.perf_counter() - t0
    _figure("mqtt_publish_coalesce_samples_per_s", args.rows * args.batches / dt, "samples/s")
    items = pub._pending
    t0 = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for tid, s in items.items():
            payload_of(pub.targets[tid], s)
    dt = time.perf_counter() - t0
    _figure("mqtt_publish_uns_payloads_per_s", len(items) * rounds / dt, "payloads/s")
    t0 = time.perf_counter()
    for _ in range(rounds):
        msg = pb.Payload(timestamp=1, seq=1)
        for tid, s in items.items():
            m = msg.metrics.add(alias=tid, datatype=DATATYPES["float"], timestamp=s.ts_ms)
            _set_value(m, pub.targets[tid], s)
        msg.SerializeToString()
    dt = time.perf_counter() - t0
    _figure("mqtt_publish_sparkplug_metrics_per_s", len(items) * rounds / dt, "metrics/s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def through_broker(qos: int, tags: int = 2000, rounds: int = 5) -> None:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).is_file():
        return
    port, work = _free_port(), Path(tempfile.mkdtemp())
    (work / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(work / "m.conf")], stderr=subprocess.DEVNULL)
    try:
        settings = PublishSettings(mqtt=f"mqtt://127.0.0.1:{port}", uns={"qos": qos})
        bus = InProcBus()
        pub = UnsPublisher(settings, targets_of(settings, "B", [(i, f"s/a/l/m/t{i}", "", "float")
                                                                for i in range(1, tags + 1)]), bus)
        await pub.start()
        while not pub.connected:
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        ids = np.arange(1, tags + 1, dtype=np.uint32)
        for k in range(rounds):
            bus.publish(numeric_batch(ids, 1_795_000_000_000_000 + k, np.full(tags, float(k)), Quality.GOOD))
            await asyncio.sleep(0)
        while pub.published + pub.dropped < rounds * tags or pub._pending:
            await asyncio.sleep(0.005)
        dt = time.perf_counter() - t0
        await pub.stop()
        _figure(f"mqtt_publish_uns_broker_qos{qos}_msgs_per_s", pub.published / dt, "messages/s")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
    for q in (0, 1):
        asyncio.run(through_broker(q))
