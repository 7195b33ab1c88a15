"""Live analytics cost per batch: what the SPC and anomaly engines add to each sample batch on the event loop.

Figures (one JSON line each), per batch of 5,000 samples:
- spc_live_batch_ms: ``SpcEngine.feed`` with 50 SPC tags (I-MR, Western Electric rules, limits learned), 100
  samples of each per batch (no rule violated: a fake alarm engine counts the calls).
- anomaly_score_batch_ms: ``AnomalyEngine.feed`` with 10 machines of 5 tags each (PCA), 100 samples of each
  tag per batch at 100 distinct instants, scores handed to a sink.
- anomaly_score_batch_1machine_ms: the same batch with only one of its machines trained.
Median of --repeat batches after a warm-up. Run: .venv/bin/python bench/analytics_live.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from plantlink.analytics.anomaly import PCADetector
from plantlink.engines.anomaly import AnomalyEngine, ModelFiles, Trained
from plantlink.engines.spc import SpcEngine
from plantlink.model import parse_plant
from plantlink.samples import numeric_batch

S = 1_000_000


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit}), flush=True)


class Alarms:
    def __init__(self) -> None:
        self.calls = 0

    def derive(self, *args: Any) -> int:
        self.calls += 1
        return 0

    def condition(self, key: str) -> bool:  # nothing restored: every derived alarm starts clear
        return False


def plant_yaml(machines: int, tags: int, spc: bool) -> str:
    out = ["enterprise: Bench", "devices:", "  plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}",
           "sites:", "  - name: s1", "    timezone: UTC", "    areas:", "      - name: a1", "        lines:",
           "          - name: l1", "            machines:"]
    addr = 0
    for m in range(machines):
        names = [f"t{j}" for j in range(tags)]
        out.append(f"              - name: m{m}")
        if not spc:
            out.append(f"                anomaly: {{tags: [{', '.join(names)}], mode: alarm}}")
        out.append("                tags:")
        for n in names:
            extra = ", spc: {chart: imr, alarm: true, learn: 25}" if spc else ""
            out.append(f"                  - {{name: {n}, source: {{device: plc, address: {addr}, type: float32}}"
                       f"{extra}}}")
            addr += 2
    return "\n".join(out) + "\n"


def batches(ids: np.ndarray, per_tag: int, count: int, rng: np.random.Generator) -> list[pa.RecordBatch]:
    out = []
    for b in range(count):
        ts = (b * per_tag + np.arange(per_tag)) * S
        out.append(numeric_batch(np.repeat(ids, per_tag), np.tile(ts, ids.size),
                                 rng.normal(50, 1, ids.size * per_tag), 192))
    return out


def timed(feed: Any, items: list[pa.RecordBatch]) -> float:
    times = []
    for b in items:
        t = time.perf_counter()
        feed(b)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def bench_spc(repeat: int, rng: np.random.Generator) -> None:
    plant = parse_plant(plant_yaml(5, 10, spc=True), "bench.yaml")
    ids = {t.path: i for i, t in enumerate(plant.tags, 1)}
    eng = SpcEngine(plant, ids, Alarms())
    arr = np.array(sorted(ids.values()))
    items = batches(arr, 100, repeat + 5, rng)
    for b in items[:5]:
        eng.feed(b)
    emit("spc_live_batch_ms", timed(eng.feed, items[5:]), "ms")


def bench_anomaly(repeat: int, rng: np.random.Generator, trained: int) -> float:
    plant = parse_plant(plant_yaml(10, 5, spc=False), "bench.yaml")
    ids = {t.path: i for i, t in enumerate(plant.all_tags, 1)}
    with tempfile.TemporaryDirectory() as d:
        eng = AnomalyEngine(plant, ids, Alarms(), lambda b: None, ModelFiles(Path(d)))
        for k, (path, ms) in enumerate(eng.machines.items()):
            if k >= trained:
                break
            det = PCADetector().learn_many(rng.normal(50, 1, (500, 5)), columns=list(ms.tags))
            eng.install(Trained(path, ms.tags, "pca", det, 0, 1, S, 500, 0, "bench"))
        arr = np.array(sorted(i for p, i in ids.items() if not p.endswith("anomaly_score")))
        items = batches(arr, 100, repeat + 5, rng)
        for b in items[:5]:
            eng.feed(b)
        return timed(eng.feed, items[5:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    bench_spc(args.repeat, rng)
    emit("anomaly_score_batch_ms", bench_anomaly(args.repeat, rng, 10), "ms")
    emit("anomaly_score_batch_1machine_ms", bench_anomaly(args.repeat, rng, 1), "ms")


if __name__ == "__main__":
    main()
