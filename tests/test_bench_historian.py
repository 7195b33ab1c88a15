"""``bench/historian.py`` runs (plantlink only, a tiny workload) and says what the issue asks; its workload has
what it claims (gaps, out-of-order and late batches, bad quality, text), the same in both of its files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from bench.historian_workload import Layout, lp_batches, write

ROOT = Path(__file__).resolve().parents[1]


def test_workload_files_agree_and_hold_the_awkward_parts(tmp_path: Path) -> None:
    lay = Layout(dense=10, sparse=1)
    seconds = 5 * 3600
    files, samples, _ = write(tmp_path, lay, 1_800_000_000, seconds, 50)
    table = pa.ipc.open_stream(str(files.arrows)).read_all()
    assert table.num_rows == samples
    lines = [line for b in lp_batches(files) for line in b.decode().splitlines()]
    assert len(lines) == samples
    assert sum(line.startswith("txt,") for line in lines) == 2 * seconds // 10
    tag = table.column("tag_id").to_numpy()
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    dense = tag < lay.dense
    assert dense.sum() < lay.dense * seconds  # gaps
    bad = (table.column("quality").to_numpy() == 0).mean()
    assert 0.005 < bad < 0.02
    assert np.any(ts % 1_000_000 != 0)  # jitter
    # per tag, time goes back somewhere in delivery order: out-of-order and late batches
    one = ts[tag == 0]
    assert np.any(np.diff(one) < 0)
    assert samples == len(np.unique(np.stack([tag, ts]), axis=1)[0])  # no (tag, time) twice


def test_bench_prints_the_figures_for_plantlink(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "historian.py"), "--only", "plantlink", "--tags", "10", "--days", "0.02",
         "--runs", "1", "--dir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = {f["name"]: f for f in map(json.loads, out.stdout.splitlines())}
    for kind in ("ingest_durable", "bytes_per_sample", "peak_memory", "latest", "downsample", "aggregate_1m",
                 "aggregate_10s"):
        f = figures[f"historian_{kind}_plantlink"]
        assert f["value"] > 0 and f["unit"]
    ingest = figures["historian_ingest_durable_plantlink"]
    assert ingest["stored"] == ingest["samples"] == figures["historian_workload_generation"]["samples"]
    assert figures["historian_peak_memory_plantlink"]["unit"] == "MiB"
    assert not (tmp_path / "work").exists()  # removed afterwards
