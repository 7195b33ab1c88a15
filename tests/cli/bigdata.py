"""A data directory with ~2M samples of one tag (written straight into its historian, as a recorder would), and
a run of ``plantlink export`` in a process of its own that reports its peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from plantlink.historian import default_path
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch
from tests.client.plantdata import make_data_dir, plant_file

TAG = "windsor/a1/l1/m1/temp"
ROWS = 2_000_000
#: 2026-05-01T00:00:00Z; one sample a second
START_US = 1_777_593_600_000_000
STEP_US = 1_000_000
#: Runs the command line in this process, then prints its peak RSS (KiB) as the last line of stderr.
_RUN = ("import resource, sys; from plantlink.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")


def make_big(root: Path, rows: int = ROWS) -> Path:
    model = plant_file(root / "model")
    data = root / "data"
    make_data_dir(data, model)
    with DuckDBHistorian(default_path(data), background_flush=False) as h:
        ids = dict(zip(h.tags().column("path").to_pylist(), h.tags().column("tag_id").to_pylist(), strict=True))
        for lo in range(0, rows, 500_000):
            n = min(500_000, rows - lo)
            k = np.arange(lo, lo + n, dtype=np.int64)
            h.write(numeric_batch(np.full(n, ids[TAG], np.uint32), START_US + k * STEP_US,
                                  np.sin(k / 600.0) * 10 + 20, int(Quality.GOOD)))
        h.flush()
    return data


def export_rss(data: Path, out: Path, end_us: int, fmt: str = "csv") -> tuple[int, str]:
    """(peak RSS in KiB, stderr) of ``plantlink export`` of TAG from START_US to ``end_us``."""
    iso = lambda us: np.datetime_as_string(np.datetime64(us, "us"), unit="us") + "Z"  # noqa: E731
    res = subprocess.run([sys.executable, "-c", _RUN, "export", "--data", str(data), "--tags", TAG,
                          "--from", iso(START_US), "--to", iso(end_us), "--format", fmt, "--out", str(out)],
                         capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr
    return int(res.stderr.strip().splitlines()[-1]), res.stderr


if __name__ == "__main__":  # quick look: python -m tests.cli.bigdata DIR
    d = make_big(Path(sys.argv[1]))
    print(json.dumps({"data": str(d)}))
