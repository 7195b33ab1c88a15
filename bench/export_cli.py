"""``plantlink export`` of ~2M rows of one tag (CSV and Parquet), each in a process of its own: rows/s and peak
RSS, against an export of one hour (the baseline RSS). One JSON line per figure.

    .venv/bin/python -m bench.export_cli
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tests.cli.bigdata import ROWS, START_US, STEP_US, export_rss, make_big


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_big(root)
        export_rss(data, root / "first.csv", START_US + 60 * STEP_US)  # the first open of the file checkpoints it
        small, _ = export_rss(data, root / "hour.csv", START_US + 3600 * STEP_US)
        print(json.dumps({"name": "export_cli_rss_one_hour", "value": round(small / 1024, 1), "unit": "MiB"}))
        for fmt in ("csv", "parquet"):
            t0 = time.perf_counter()
            rss, _ = export_rss(data, root / f"all.{fmt}", START_US + ROWS * STEP_US, fmt)
            dt = time.perf_counter() - t0
            size = (root / f"all.{fmt}").stat().st_size
            print(json.dumps({"name": f"export_cli_{fmt}_rows_per_s", "value": round(ROWS / dt), "unit": "rows/s"}))
            print(json.dumps({"name": f"export_cli_{fmt}_rss_2m_rows", "value": round(rss / 1024, 1), "unit": "MiB"}))
            print(json.dumps({"name": f"export_cli_{fmt}_file_2m_rows", "value": round(size / 2**20, 1),
                              "unit": "MiB"}))


if __name__ == "__main__":
    main()
