"""`plantlink demo --json` as CI and a newcomer run it: simulator + connectors + historian in one process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from plantlink.historian import open_historian
from plantlink.model import load_plant

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-plant.yaml"


def test_demo_runs_headless_and_stores_samples(tmp_path: Path) -> None:
    t0 = time.time()
    res = subprocess.run(
        [sys.executable, "-m", "plantlink.cli", "demo", "--duration", "6", "--json", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    plant = load_plant(DEMO)
    assert status["tags"] == len(plant.tags)
    assert set(status["connectors"]) == set(plant.devices)
    for dev, c in status["connectors"].items():
        assert c["status"] == "connected", (dev, c)
        assert c["samples"] > 0
    assert status["samples_stored"] == sum(c["samples"] for c in status["connectors"].values())
    assert Path(status["historian"]).is_file()

    h = open_historian("duckdb", path=status["historian"])
    try:
        tags = {row["path"]: row["tag_id"] for row in h.tags().to_pylist()}
        assert set(tags) == {t.path for t in plant.tags}
        temp = h.raw(tags["windsor/body-paint/body-line-1/oven1/zone1_temperature"], int(t0 * 1e6),
                     int(time.time() * 1e6), limit=1000)
        assert temp.num_rows > 0
        assert all(0 < v < 400 for v in temp.column("value").to_pylist())
    finally:
        h.close()
