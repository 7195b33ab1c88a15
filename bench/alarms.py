"""Alarm engine benchmark: 100,000 definitions (25,000 tags x hihi/hi/lo/lolo) against sample batches.

Figures (one JSON line each):
- alarms_throughput: samples/s evaluated flat out (feed + journal), single thread.
- alarms_paced_rate: samples/s actually sustained when 200,000 samples/s are published on the in-process bus
  (batches of 2,000 every 10 ms) to ``AlarmEngine.run`` on a lossless subscription.
- alarms_latency_p50/p99: from a batch's publication to its transitions committed in the SQLite journal.

Values wander around 50 with about 1 sample in 2,000 pushed past a limit (a few transitions per batch).
Run: .venv/bin/python bench/alarms.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from plantlink.bus import InProcBus
from plantlink.engines.alarms import AlarmEngine
from plantlink.engines.alarms.compiled import compile_alarms
from plantlink.model.alarms import AlarmDef
from plantlink.samples import now_us, numeric_batch
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore

TAGS, RATE, BATCH = 25_000, 200_000, 2_000


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


def definitions() -> list[tuple[str, str, str, AlarmDef, str | None]]:
    kinds = [("hihi", 95.0), ("hi", 80.0), ("lo", 20.0), ("lolo", 5.0)]
    proto = {k: AlarmDef(name=k, type=k, limit=lim, deadband=1.0, priority="medium") for k, lim in kinds}  # type: ignore[arg-type]
    out = []
    for t in range(TAGS):
        site = f"s{t % 4}"
        machine = f"{site}/a/l{t % 50}/m{t % 500}"
        for k, _ in kinds:
            out.append((f"{machine}/t{t}", site, machine, proto[k], None))
    return out


def batches(n: int, rng: np.random.Generator, t0: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _ in range(n):
        ids = rng.integers(1, TAGS + 1, BATCH).astype(np.uint32)
        vals = 50 + rng.normal(0, 8, BATCH)
        spikes = rng.random(BATCH) < 1 / 2000
        vals[spikes] = rng.choice([99.0, 2.0], int(spikes.sum()))
        out.append((ids, vals))
    return out


def setup(tmp: Path) -> tuple[AlarmEngine, list[float]]:
    t = time.perf_counter()
    c = compile_alarms(definitions())
    emit("alarms_compile_time", time.perf_counter() - t, "s")
    store = AlarmStore(Store.open(default_url(tmp)).engine)
    ids = {p: i + 1 for i, p in enumerate(c.tag_paths)}
    eng = AlarmEngine(store=store, compiled=c, tag_ids=ids)
    commits: list[float] = []
    rec = eng.recorder
    assert rec is not None
    write = rec._write_some

    def timed() -> bool:  # the time each transaction of journal entries is committed
        before = rec.written
        ok = write()
        if rec.written > before:
            commits.append(time.perf_counter())
        return ok

    rec._write_some = timed  # type: ignore[method-assign]
    eng.start()
    return eng, commits


def throughput(eng: AlarmEngine, rng: np.random.Generator) -> None:
    t0 = now_us()
    data = [numeric_batch(tid, t0 + k * 10_000, vals, 192) for k, (tid, vals) in enumerate(batches(200, rng, t0))]
    start = time.perf_counter()
    for batch in data:
        eng.feed(batch)
    emit("alarms_throughput", 200 * BATCH / (time.perf_counter() - start), "samples/s")


async def paced(eng: AlarmEngine, commits: list[float], rng: np.random.Generator,
                seconds: float) -> None:
    bus = InProcBus()
    task = asyncio.create_task(eng.run(bus.subscribe("alarms")))
    n = int(seconds * RATE / BATCH)
    data = batches(n, rng, now_us())
    period = BATCH / RATE
    published: list[float] = []
    lat: list[float] = []
    start = time.perf_counter()
    for k, (tid, vals) in enumerate(data):
        due = start + k * period
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        before = len(commits)
        bus.publish(numeric_batch(tid, now_us(), vals, 192))
        published.append(time.perf_counter())
        await asyncio.sleep(0)
        if len(commits) > before:
            lat.append(commits[-1] - published[-1])
    await bus.close()
    await task
    elapsed = time.perf_counter() - start
    emit("alarms_paced_rate", n * BATCH / elapsed, "samples/s")
    emit("alarms_journaled", eng.journaled, "transitions")
    if lat:
        emit("alarms_latency_p50", float(np.percentile(lat, 50)) * 1000, "ms")
        emit("alarms_latency_p99", float(np.percentile(lat, 99)) * 1000, "ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        eng, commits = setup(Path(tmp))
        emit("alarms_definitions", eng.c.size, "definitions")
        throughput(eng, rng)
        asyncio.run(paced(eng, commits, rng, args.seconds))


if __name__ == "__main__":
    main()
