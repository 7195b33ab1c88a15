"""SPC computation benchmark: CPU time of the pure computations on large arrays (no historian).

Figures (one JSON line each, best of 3, process CPU seconds):
- spc_xbar_r_<n>: X-bar R of n samples in subgroups of 5.
- spc_imr_<n>: I-MR of n samples.
- spc_ewma_<n>, spc_cusum_<n>: EWMA (lambda 0.2) and CUSUM of n samples.
- spc_rules_all_<n>: all 12 rules (Western Electric and Nelson) over n points.
Run: .venv/bin/python bench/spc.py [--n 200000 1000000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from plantlink.analytics import spc
from plantlink.analytics.spc_rules import evaluate


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    out = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        out.append(time.process_time() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="*", default=[200_000, 1_000_000])
    args = ap.parse_args()
    for n in args.n:
        x = np.random.default_rng(n).normal(10, 1, n)
        figures = {
            f"spc_xbar_r_{n}": lambda x=x: spc.xbar_r(spc.every(x, 5)),
            f"spc_imr_{n}": lambda x=x: spc.imr(x),
            f"spc_ewma_{n}": lambda x=x: spc.ewma(x, 0.2, 3.0),
            f"spc_cusum_{n}": lambda x=x: spc.cusum(x),
            f"spc_rules_all_{n}": lambda x=x: evaluate(x, 10.0, 1.0, 7.0, 13.0, ["western_electric", "nelson"]),
        }
        for name, fn in figures.items():
            print(json.dumps({"name": name, "value": round(best(fn), 4), "unit": "s"}), flush=True)


if __name__ == "__main__":
    main()
