"""The information in the historian benches' data: a floor no lossless store goes below, in bytes per sample.

Computed from the generators' own parameters (their seeds): a Gaussian increment or noise of standard
deviation s rounded to a quantum q carries log2(s * sqrt(2 pi e) / q) bits (s >> q); a uniform jitter over k
values log2(k); a sample bad with probability p the binary entropy of p; tag ids and regular times nothing.
One JSON line per data profile.

    .venv/bin/python bench/historian_floor.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from historian_size import T0, Fleet, Walk
from historian_workload import Generator, Layout

JITTER_VALUES = 101  # bench/historian_workload.py: -50 .. 50 whole milliseconds


def gaussian_bits(sigma: np.ndarray, quantum: np.ndarray | float) -> float:
    return float(np.mean(np.log2(sigma * math.sqrt(2 * math.pi * math.e) / quantum)))


def bernoulli_bits(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def emit(name: str, bits: float, **parts: float) -> None:
    print(json.dumps({"name": f"historian.information_floor.{name}", "value": round(bits / 8, 3),
                      "unit": "B/sample", **{k: round(v, 2) for k, v in parts.items()}}), flush=True)


def main() -> None:
    walk = Walk(100, 1.0)
    v = gaussian_bits(walk.step, 0.01)
    emit("walk", v + bernoulli_bits(0.001), value_bits=v)
    fleet = Fleet(5, 20, 1.0, T0)
    v = gaussian_bits(fleet.noise, 0.001)
    emit("fleet", v + bernoulli_bits(0.001), value_bits=v)
    lay = Layout(dense=100, sparse=10)
    gen = Generator(lay, 0, 86_400, 50)
    v = gaussian_bits(gen.step[:lay.dense], 10.0 ** -gen.decimals[:lay.dense].astype(float))
    jitter = math.log2(JITTER_VALUES)
    emit("workload_1hz", v + jitter + bernoulli_bits(0.01), value_bits=v, jitter_bits=jitter)


if __name__ == "__main__":
    main()
