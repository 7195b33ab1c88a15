"""Command-line start-up benchmark: the wall time of whole ``plantlink`` processes, as a person waits for them.

Figures (one JSON line each, the median of ``--runs`` subprocesses, each started afresh; issue 10 item 7 sets
0.5 s for the first two):
- cli_help: ``plantlink --help``.
- cli_check_demo: ``plantlink check examples/demo-plant.yaml`` (the human summary).
- cli_users_help: ``plantlink users --help`` (loads the users and audit commands).
- cli_import: ``python -c "import plantlink.cli"``, the floor under every command.
The load average at the start is printed as its own line (the machine may be shared).
Run: .venv/bin/python bench/cli.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEMO_PLANT = Path(__file__).resolve().parents[1] / "examples" / "demo-plant.yaml"
CLI = [sys.executable, "-m", "plantlink.cli"]
FIGURES: dict[str, tuple[list[str], float | None]] = {
    "cli_help": ([*CLI, "--help"], 0.5),
    "cli_check_demo": ([*CLI, "check", str(DEMO_PLANT)], 0.5),
    "cli_users_help": ([*CLI, "users", "--help"], None),
    "cli_import": ([sys.executable, "-c", "import plantlink.cli"], None),
}


def wall_seconds(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def emit(name: str, value: float, unit: str, target: float | None = None) -> None:
    line: dict[str, object] = {"name": name, "value": round(value, 3), "unit": unit}
    if target is not None:
        line["target"] = target
    print(json.dumps(line), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    emit("load_average_1min", os.getloadavg()[0], "processes")
    for name, (cmd, target) in FIGURES.items():
        wall_seconds(cmd)  # warm the file cache: every run then starts alike
        emit(name, statistics.median(wall_seconds(cmd) for _ in range(args.runs)), "s", target)


if __name__ == "__main__":
    main()
