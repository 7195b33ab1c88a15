"""`plantlink check` as a person runs it: exit code, summary, every error listed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


BAD_CASES = sorted(p.parent.name for p in CASES.glob("*/plant.yaml") if (p.parent / "expected_error.txt").exists())


def test_malformed_files_give_plain_located_errors(tmp_path: Path) -> None:
    """As a person runs it: a UTF-16 file, a billion laughs and a file holding only null each end in one
    located error and exit 1, promptly, never a traceback (the null file used to say "0 problem(s)")."""
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes((CASES / "ok_minimal" / "plant.yaml").read_text().encode("utf-16"))
    for path, where in [(utf16, f"{utf16}:1:1:"), (CASES / "billion_laughs" / "plant.yaml", "plant.yaml:7:8:"),
                        (CASES / "top_null" / "plant.yaml", "plant.yaml:2:1:")]:
        res = run("check", str(path))
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr + res.stdout
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error ")]
        assert len(errors) == 1 and where in errors[0], res.stderr
        assert "1 problem(s)" in res.stderr


def test_every_bad_case_exits_1_without_traceback() -> None:
    """In process (fast): every bad case folder answers exit 1 and one `error` line per problem."""
    from typer.testing import CliRunner

    from plantlink.cli import app

    runner = CliRunner()
    for case in BAD_CASES:
        res = runner.invoke(app, ["check", str(CASES / case / "plant.yaml")])
        assert res.exit_code == 1, (case, res.output, res.exception)
        assert "Traceback" not in res.output
        n = sum(ln.startswith("error ") for ln in res.output.splitlines())
        assert n >= 1 and f"{n} problem(s)" in res.output, (case, res.output)


def test_a_bug_while_loading_is_an_internal_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import plantlink.model
    from plantlink.cli import INTERNAL_ERROR, app

    def broken(path: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(plantlink.model, "load_plant", broken)
    res = CliRunner().invoke(app, ["check", str(CASES / "ok_minimal" / "plant.yaml")])
    assert res.exit_code == INTERNAL_ERROR == 70
    assert "internal error while reading the plant model (RuntimeError: a bug)" in res.output
    assert "Traceback" not in res.output


def test_check_does_not_load_the_web_stack() -> None:
    """`plantlink check` answers at once: the users and audit command groups (which import FastAPI and the
    auth stack, seconds of start-up) load only when named or listed by --help."""
    code = ("import sys; from plantlink.cli import app\n"
            "try:\n    app(['check', sys.argv[1]])\nexcept SystemExit as e:\n    print(e.code)\n"
            "print('fastapi' in sys.modules, 'plantlink.auth' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(CASES / "top_null" / "plant.yaml")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.stdout.split() == ["1", "False", "False"], res.stdout + res.stderr
    assert "must hold a mapping" in res.stderr


CONNECTOR_STACK = ("asyncua", "pymodbus", "pyarrow", "numpy", "fastapi", "sqlalchemy", "plantlink.connectors.base",
                   "plantlink.connectors.modbus.client", "plantlink.connectors.opcua.client")


@pytest.mark.parametrize("model, code", [(Path(__file__).parents[1] / "examples" / "demo-plant.yaml", 0),
                                         (CASES / "bad_modbus_point" / "plant.yaml", 1)])
def test_check_imports_no_connector_client_no_web_stack_no_store(model: Path, code: int) -> None:
    """`plantlink check` validates every device and tag through the connector plugins (config models, node ids,
    the Modbus overlap check) without importing the client libraries, numpy, pyarrow or the web stack."""
    prog = ("import sys; from plantlink.cli import app\n"
            "try:\n    app(['check', sys.argv[1]])\nexcept SystemExit as e:\n    print(e.code)\n"
            f"print(sorted(m for m in {CONNECTOR_STACK!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", prog, str(model)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.stdout.splitlines()[-2:] == [str(code), "[]"], res.stdout + res.stderr
