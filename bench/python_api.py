"""Python API benchmarks (plantlink.connect); one JSON line per figure ({"name", "value", "unit"}).

A data directory holds 4 tags x ``--hours`` of 1 Hz samples (written straight into the historian of a real
Runtime, then stopped). Timed, best of 3, for each mode (embedded: the data directory; remote: a real uvicorn
server on a copy, with an API token): a raw read of the 4 tags over the whole range (samples per second), and
an aggregate (mean, max every minute) over it.

    .venv/bin/python bench/python_api.py [--hours 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.client.plantdata import plant_file, running_server, runtime_of  # noqa: E402

import plantlink  # noqa: E402
from plantlink.samples import numeric_batch  # noqa: E402

TAGS = ["windsor/a1/l1/m1/temp", "windsor/a1/l1/m2/speed", "windsor/a1/l1/m1/count", "windsor/a1/l1/m1/reject"]
START = datetime(2026, 3, 1, tzinfo=UTC)


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


def fill(data_dir: Path, model: Path, hours: int) -> int:
    n = hours * 3600
    ts = int(START.timestamp()) * 1_000_000 + np.arange(n, dtype=np.int64) * 1_000_000
    rng = np.random.default_rng(1)

    async def main() -> None:
        rt = runtime_of(data_dir, model)
        await rt.start()
        try:
            assert rt.historian is not None
            for path in TAGS:
                for lo in range(0, n, 200_000):
                    part = slice(lo, min(lo + 200_000, n))
                    rt.historian.write(numeric_batch(np.full(part.stop - lo, rt.tag_ids[path]), ts[part],
                                                     rng.normal(50, 5, part.stop - lo), 192))
            rt.historian.flush()
        finally:
            await rt.stop()

    asyncio.run(main())
    return n * len(TAGS)


def best(call: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(3):
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
    return min(times), out


def measure(mode: str, pl: Any, hours: int, samples: int) -> None:
    end = START + timedelta(hours=hours)
    secs, df = best(lambda: pl.read(TAGS, START, end))
    assert df.height == samples, (df.height, samples)
    emit(f"python_api.{mode}.raw_{samples}_samples_s", secs, "s")
    emit(f"python_api.{mode}.raw_samples_per_s", samples / secs, "samples/s")
    secs, df = best(lambda: pl.read(TAGS, START, end, every="1m", agg=["mean", "max"]))
    assert df.height == hours * 60 * len(TAGS)
    emit(f"python_api.{mode}.aggregate_1m_{hours}h_4_tags_s", secs, "s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = plant_file(root / "model")
        samples = fill(root / "data", model, args.hours)
        shutil.copytree(root / "data", root / "served")
        with plantlink.connect(root / "data") as pl:
            measure("embedded", pl, args.hours, samples)
        with running_server(root / "served", model) as s, plantlink.connect(s.url, token=s.token) as pl:
            measure("remote", pl, args.hours, samples)


if __name__ == "__main__":
    main()
