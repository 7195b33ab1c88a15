"""`plantlink demo --json` as CI and a newcomer run it: simulator + connectors + historian in one process, in
the data directory every command uses by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantlink.cli import DEMO_MARKER, app
from plantlink.historian import open_historian
from plantlink.model import load_plant

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo-plant.yaml"


def plantlink(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``plantlink ARGS`` run from ``cwd`` as from a shell without PLANTLINK_DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "PLANTLINK_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "plantlink.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_demo_runs_headless_and_stores_samples(tmp_path: Path) -> None:
    """... in ./plantlink-data, where ``plantlink audit`` and ``plantlink users`` then look by default."""
    t0 = time.time()
    res = plantlink(tmp_path, "demo", "--duration", "6", "--json", timeout=90)
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    historian = tmp_path / status["historian"]  # relative to where it ran
    assert historian.parent == tmp_path / "plantlink-data"
    verify = plantlink(tmp_path, "audit", "verify")
    assert verify.returncode == 0 and "audit trail OK" in verify.stdout, verify.stderr
    assert plantlink(tmp_path, "users", "list").returncode == 0
    plant = load_plant(DEMO)
    assert sorted(d.protocol for d in plant.devices.values()) == ["logix", "modbus", "opcua", "s7"]
    assert status["tags"] == len(plant.tags)
    assert set(status["connectors"]) == set(plant.devices)
    for dev, c in status["connectors"].items():
        assert c["status"] == "connected", (dev, c)
        assert c["samples"] > 0
    assert status["samples_stored"] == sum(c["samples"] for c in status["connectors"].values())
    assert historian.is_file()

    h = open_historian("duckdb", path=historian)
    try:
        tags = {row["path"]: row["tag_id"] for row in h.tags().to_pylist()}
        assert set(tags) == {t.path for t in plant.all_tags}  # with the derived (anomaly score, RUL)
        temp = h.raw(tags["windsor/body-paint/body-line-1/oven1/zone1_temperature"], int(t0 * 1e6),
                     int(time.time() * 1e6), limit=1000)
        assert temp.num_rows > 0
        assert all(0 < v < 400 for v in temp.column("value").to_pylist())
    finally:
        h.close()


def test_the_demo_refuses_a_plants_data_directory(tmp_path: Path) -> None:
    """The demo adds users with published passwords: never to a plant's store."""
    (tmp_path / "plantlink.sqlite").touch()
    res = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path), "--duration", "1"])
    assert res.exit_code == 1 and f"{tmp_path} holds a plant's data" in res.output, res.output
    assert "--data-dir DIR" in res.output and not (tmp_path / DEMO_MARKER).exists()


def test_run_refuses_the_demos_data_directory(tmp_path: Path) -> None:
    (tmp_path / DEMO_MARKER).write_text("demo", encoding="utf-8")
    res = CliRunner().invoke(app, ["run", str(DEMO), "--data-dir", str(tmp_path), "--no-api", "--duration", "1"])
    assert res.exit_code == 1 and f"{tmp_path} holds the demo's data" in res.output, res.output
    assert "--data-dir DIR" in res.output and not (tmp_path / "plantlink.sqlite").exists()


def test_the_demo_without_its_extra_says_which_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's Logix PLC needs pylogix and cm-ethernetip: without them, one line naming the `demo` extra."""
    monkeypatch.setitem(sys.modules, "pylogix", None)  # `import pylogix` now raises ImportError
    monkeypatch.setitem(sys.modules, "ethernetip", None)
    res = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path / "d"), "--duration", "1"])
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines() == [
        "error: the demo's S7 and Logix PLCs need the 'demo' extra (missing: pylogix, cm-ethernetip): "
        "pip install 'plantlink[demo]' (or make demo)"], res.output
    assert not (tmp_path / "d").exists()  # nothing started, nothing written
