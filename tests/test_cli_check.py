"""`plantlink check` as a person runs it: exit code, summary, every error listed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CASES = Path(__file__).parent / "model" / "cases"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plantlink.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_check_ok_prints_summary() -> None:
    res = run("check", str(CASES / "ok_minimal" / "plant.yaml"), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["tags_per_protocol"] == {"modbus": 2, "opcua": 1}


def test_check_ok_human_summary() -> None:
    res = run("check", str(CASES / "ok_minimal" / "plant.yaml"))
    assert res.returncode == 0
    assert "machines" in res.stdout and "tags over modbus" in res.stdout


def test_check_lists_every_error_and_exits_1() -> None:
    res = run("check", str(CASES / "bad_modbus_point" / "plant.yaml"))
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error ")]
    assert len(lines) == 5, res.stderr
    assert "[windsor/a/l/m/q source.poll]" in res.stderr
    assert "5 problem(s)" in res.stderr


def test_check_missing_file() -> None:
    res = run("check", "/nonexistent/plant.yaml")
    assert res.returncode == 1
    assert "cannot read the file" in res.stderr


def test_every_command_has_help() -> None:
    for cmd in ("check", "sim", "browse", "run", "demo", "users", "audit", "users token"):
        res = run(*cmd.split(), "--help")
        assert res.returncode == 0, (cmd, res.stderr)
        assert "Usage" in res.stdout
