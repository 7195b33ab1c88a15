"""The help of every ``plantlink`` command and subcommand: flags show no value, every option says what it does,
and ``--help`` loads neither the web stack nor the store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from plantlink.cli import app

HEAVY = ("fastapi", "sqlalchemy", "plantlink.auth", "plantlink.store", "plantlink.app", "plantlink.connectors",
         "asyncio", "duckdb", "pyarrow")


def commands(group: TyperGroup, ctx: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``group`` (the lazy ``users`` and ``audit`` groups loaded), with its name path."""
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        yield (*path, name), cmd
        if isinstance(cmd, TyperGroup):
            yield from commands(cmd, cmd.context_class(cmd, parent=ctx, info_name=name), (*path, name))


def test_every_help_shows_flags_without_a_value_and_every_option_with_its_help() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    found = [((), root), *commands(root, root.context_class(root, info_name="plantlink"))]
    assert {" ".join(p) for p, _ in found} >= {"check", "run", "demo", "users token create", "audit export"}
    runner = CliRunner()
    for path, cmd in found:
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0 and "Usage: plantlink" in res.output, (path, res.output)
        assert "<bool>" not in res.output, (path, res.output)
        for param in cmd.get_params(cmd.context_class(cmd)):  # --help included
            if param.param_type_name == "option" and not param.hidden:
                assert param.help, (path, param.opts)


def test_verbose_says_what_it_does() -> None:
    out = CliRunner().invoke(app, ["run", "--help"]).output
    assert "-v, --verbose" in out and "Log debug messages" in out


def test_help_and_the_module_load_no_web_stack_no_store_no_connectors() -> None:
    code = ("import sys\nfrom plantlink.cli import app\nbefore = set(sys.modules)\n"
            "try:\n    app(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            f"print(sorted(m for m in {HEAVY!r} if m in before), sorted(m for m in {HEAVY!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "[] []", res.stdout
    assert "users" in res.stdout and "audit" in res.stdout  # listed with their one-line help, not loaded
