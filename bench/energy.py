"""Energy engine benchmark: a month of one machine's power at 1 s (2.6 M samples, 1 % bad) and of its
meter at 1 min, split by 20,000 state intervals.

Figures (one JSON line each):
- energy_power_profile_s: seconds to build the step profile of the power samples (max_gap 10 s);
- energy_meter_profile_s: seconds to build the meter's profile (43,200 readings, a rollover);
- energy_split_s: seconds to split the power profile by the state intervals (per state, unknown, measured).

Run: .venv/bin/python bench/energy.py
"""

from __future__ import annotations

import itertools
import json
import time

import numpy as np

from plantlink.engines.energy import from_meter, from_power, split_by_state

S = 1_000_000


def figure(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit}))


def main() -> None:
    rng = np.random.default_rng(7)
    n = 30 * 86400
    ts = np.arange(n, dtype=np.int64) * S
    kw = rng.uniform(2, 60, n)
    kw[rng.random(n) < 0.01] = np.nan
    t0 = time.perf_counter()
    prof = from_power(ts, kw, n * S, max_gap_us=10 * S)
    figure("energy_power_profile_s", time.perf_counter() - t0, "s")
    meter_ts = ts[::60]
    reading = np.cumsum(rng.uniform(0, 1, meter_ts.size)) + 4e9 - 100
    t0 = time.perf_counter()
    from_meter(meter_ts, reading % 4294967296, wrap=4294967296)
    figure("energy_meter_profile_s", time.perf_counter() - t0, "s")
    edges = np.sort(rng.choice(np.arange(1, n), size=20_001, replace=False)) * S
    names = ["running", "idle", "faulted", "planned_stop", "unknown"]
    states = [(int(a), int(b), names[i % 5]) for i, (a, b) in enumerate(itertools.pairwise(edges))]
    t0 = time.perf_counter()
    split_by_state(prof, states, 0, n * S)
    figure("energy_split_s", time.perf_counter() - t0, "s")


if __name__ == "__main__":
    main()
