"""Run the test suite in a few pytest processes at once (``make test``). On the 2-vCPU machine two processes took
17.8 min of wall time, the CPUs about 70 % busy (CI run e1, 2026-11-28; 24.0 min before the suite's imports and
screenshots were cut, about what one process took then); more cores divide the time.

The suite is cut into units (a test folder, or each file of a large one), taken longest first (the sizes of
their test files, a stand-in for their time) by ``--jobs`` workers, each unit one ``pytest`` process with its
own ``--basetemp``. A unit's output is printed whole when it ends (never interleaved). The last line sums the
units' counts like pytest's own ("N passed, M skipped in S s"); the exit code is 1 when any unit failed or
errored (a unit that collected nothing is not a failure).

    python scripts/test_parallel.py [--jobs N] [-- PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
#: Folders with more test code than this (bytes) are run file by file, so the workers stay balanced.
SPLIT_BYTES = 60_000
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def units() -> list[tuple[int, list[str]]]:
    """(weight, paths) of each unit, heaviest first: a folder, or consecutive files of a large folder up to
    ``SPLIT_BYTES`` of test code; the top-level test files together."""
    out: list[tuple[int, list[str]]] = []
    top = sorted(f for f in TESTS.glob("test_*.py"))
    for entry in [*sorted(d for d in TESTS.iterdir() if d.is_dir()), *(top and [TESTS])]:
        files = top if entry == TESTS else sorted(entry.rglob("test_*.py"))
        size = sum(f.stat().st_size for f in files)
        if not files:
            continue
        if size <= SPLIT_BYTES and entry != TESTS:
            out.append((size, [str(entry.relative_to(ROOT))]))
            continue
        chunk: list[Path] = []
        for f in files:
            chunk.append(f)
            if sum(c.stat().st_size for c in chunk) >= SPLIT_BYTES or f == files[-1]:
                out.append((sum(c.stat().st_size for c in chunk), [str(c.relative_to(ROOT)) for c in chunk]))
                chunk = []
    return sorted(out, reverse=True)


class Runner:
    def __init__(self, todo: list[list[str]], pytest_args: list[str], base: Path):
        self.todo = list(todo)
        self.args = pytest_args
        self.base = base
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.failed: list[str] = []  # the units that failed, as their paths

    def worker(self) -> None:
        while True:
            with self.lock:
                if not self.todo:
                    return
                unit = self.todo.pop(0)
                k = len(self.todo)
            self.run(unit, self.base / str(k))

    def run(self, unit: list[str], basetemp: Path) -> None:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--basetemp={basetemp}", *self.args, *unit],
                              cwd=ROOT, capture_output=True, text=True)
        shutil.rmtree(basetemp, ignore_errors=True)
        text = proc.stdout + proc.stderr
        tail = text.strip().splitlines()[-1] if text.strip() else ""
        with self.lock:
            for number, what in _COUNT.findall(tail):
                key = "errors" if what.startswith("error") else what
                self.counts[key] = self.counts.get(key, 0) + int(number)
            if proc.returncode not in (0, 5):  # 5: no test collected (a folder of helpers only)
                self.failed.append(" ".join(unit))
            print(f"===== {' '.join(unit)} (exit {proc.returncode}, {time.monotonic() - start:.0f} s) =====\n{text}",
                  flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("PLANTLINK_TEST_JOBS", "2")))
    ap.add_argument("pytest_args", nargs="*", help="passed to each pytest (after --)")
    args = ap.parse_args()
    start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="plantlink-tests-"))
    runner = Runner([u for _, u in units()], args.pytest_args, base)
    threads = [threading.Thread(target=runner.worker) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shutil.rmtree(base, ignore_errors=True)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(runner.counts.items()))
    if runner.failed:
        print("units that failed:\n  " + "\n  ".join(runner.failed))
    print(f"{summary} in {time.monotonic() - start:.2f}s ({args.jobs} jobs)")
    return 1 if runner.failed or not runner.counts.get("passed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
