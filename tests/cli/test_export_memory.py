"""A large export runs in constant memory: a process exporting ~2M rows (a CSV of ~180 MB) peaks at about the
RSS of one exporting an hour. (Speed is measured in bench/export_cli.py, not here.)"""

from __future__ import annotations

from pathlib import Path

from tests.cli.bigdata import ROWS, START_US, STEP_US, export_rss, make_big

#: RSS growth allowed between the hour and the 2M rows: well under the file's size (~220 MB; holding the rows
#: would take more). Measured: +0 to +36 MiB (the peak is often reached opening the data directory).
GROWTH_KIB = 100 * 1024


def test_exporting_2m_rows_keeps_memory_flat(tmp_path: Path) -> None:
    data = make_big(tmp_path)
    export_rss(data, tmp_path / "first.csv", START_US + 60 * STEP_US)  # the first open of the file checkpoints it
    small, _ = export_rss(data, tmp_path / "hour.csv", START_US + 3600 * STEP_US)
    big, _ = export_rss(data, tmp_path / "all.csv", START_US + ROWS * STEP_US)
    size = (tmp_path / "all.csv").stat().st_size
    with open(tmp_path / "all.csv", "rb") as f:
        lines = sum(1 for _ in f)
    assert lines == ROWS + 1  # the header and every sample
    assert size > 150 * 2**20
    assert big - small < GROWTH_KIB, (small, big, size)
    big_pq, _ = export_rss(data, tmp_path / "all.parquet", START_US + ROWS * STEP_US, "parquet")
    assert big_pq - small < GROWTH_KIB, (small, big_pq)
