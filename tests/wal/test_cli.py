"""The durability options of ``plantlink run`` reach the runtime and its status (in a child process, as
run from a shell)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantlink.cli import app
from tests.plants import plant_yaml

PLANT = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}", enterprise="Quiet",
                   machines="""
    - name: m1
      tags:
        - {name: t0, source: {device: plc, address: 0}}
""")


@pytest.mark.parametrize(("args", "expect"), [
    ([], {"enabled": True, "commit_ms": 20.0, "max_bytes": 1024 * 2**20}),
    (["--wal-commit-ms", "0", "--wal-max-mb", "64"], {"enabled": True, "commit_ms": 0.0, "max_bytes": 64 * 2**20}),
    (["--no-wal"], {"enabled": False}),
])
def test_run_options_set_the_durability(tmp_path: Path, args: list[str], expect: dict[str, object]) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT, encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "plantlink.cli", "run", str(plant), "--data-dir", str(tmp_path / "d"),
                          "--no-api", "--duration", "0.2", "--json", *args],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    wal = json.loads(res.stdout.strip().splitlines()[-1])["wal"]
    assert {k: wal[k] for k in expect} == expect
    assert (tmp_path / "d" / "wal").is_dir() == expect["enabled"]


def test_a_bad_commit_interval_is_refused_with_the_option_named(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(tmp_path / "x.yaml"), "--wal-commit-ms", "-5"])
    assert res.exit_code == 2 and "--wal-commit-ms" in res.output
