"""The deployment files of docs/deploy.md (issue 14, item 6): every ``plantlink`` command line in the systemd units
and the compose file is parsed against the real CLI (a command or option that does not exist fails), the units
have the hardening and paths the docs promise, and nats.conf passes ``nats-server -t``."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

from plantlink.cli import app
from tests.conftest import IN_CI

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
COMPOSE = DEPLOY / "compose" / "central.yaml"


def cli_tree() -> dict[tuple[str, ...], Any]:
    """Every command of ``plantlink`` by its name path, the lazy groups loaded."""
    from tests.test_cli_help import commands

    root = typer.main.get_command(app)
    return dict(commands(root, root.context_class(root, info_name="plantlink")))  # type: ignore[arg-type]


def check_command_line(argv: list[str], where: str) -> tuple[str, ...]:
    """``argv`` (``plantlink SUB ... --opt v``) names a real command and only its options; returns its path."""
    assert Path(argv[0]).name == "plantlink", f"{where}: {argv[0]} is not plantlink"
    tree = cli_tree()
    path: tuple[str, ...] = ()
    rest = argv[1:]
    while rest and (*path, rest[0]) in tree:
        path, rest = (*path, rest[0]), rest[1:]
    assert path, f"{where}: {argv[1:2]} is no plantlink command"
    cmd = tree[path]
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    flags = {o for p in cmd.params if getattr(p, "is_flag", False) for o in p.opts}
    positional = [p for p in cmd.params if p.param_type_name == "argument"]
    args: list[str] = []
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("-"):
            name = tok.split("=", 1)[0]
            assert name in opts, f"{where}: plantlink {' '.join(path)} has no option {name} (it has {sorted(opts)})"
            i += 1 if name in flags or "=" in tok else 2
        else:
            args.append(tok)
            i += 1
    assert len(args) <= len(positional), f"{where}: too many arguments {args} for plantlink {' '.join(path)}"
    return path


def unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(path)
    return cp


def option_value(argv: list[str], name: str) -> str | None:
    for i, tok in enumerate(argv):
        if tok == name:
            return argv[i + 1]
        if tok.startswith(name + "="):
            return tok.split("=", 1)[1]
    return None


def test_there_are_units_for_each_role() -> None:
    assert {p.name for p in UNITS} >= {"plantlink.service", "plantlink-edge.service", "plantlink-ingest@.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_runs_a_real_command_as_its_own_user_in_a_private_directory(path: Path) -> None:
    u = unit(path)
    assert {"Unit", "Service", "Install"} <= set(u.sections()), path
    svc = u["Service"]
    argv = shlex.split(svc["ExecStart"])
    cmd = check_command_line(argv, path.name)
    assert svc["User"] == "plantlink" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["KillSignal"] == "SIGTERM"  # the clean stop every command implements
    data = option_value(argv, "--data-dir")
    assert data is not None, f"{path.name}: the data directory must be explicit"
    assert data in svc["ReadWritePaths"].split(), f"{path.name}: {data} is not writable under ProtectSystem=strict"
    assert svc["StateDirectoryMode"] == "0700" and data == "/var/lib/" + svc["StateDirectory"]
    assert u["Install"]["WantedBy"] == "multi-user.target"
    assert cmd[0] in {"run", "edge", "ingest", "serve"}


def test_an_option_that_does_not_exist_is_caught() -> None:  # the check itself can fail
    with pytest.raises(AssertionError, match="no option --no-such"):
        check_command_line(["plantlink", "run", "plant.yaml", "--no-such", "1"], "here")
    with pytest.raises(AssertionError, match="no plantlink command"):
        check_command_line(["plantlink", "launch"], "here")


def test_nats_conf_is_valid_for_nats_server() -> None:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).is_file():
        if IN_CI:
            pytest.fail("nats-server is needed under CI (apt-get install nats-server)")
        pytest.skip("nats-server not installed")
    conf = DEPLOY / "compose" / "nats.conf"
    p = subprocess.run([binary, "-c", str(conf), "-t"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    text = conf.read_text()
    assert "jetstream" in text and "mqtt" in text and "server_name" in text


def test_the_compose_file_runs_real_commands_against_its_own_services() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"nats", "clickhouse", "postgres"} <= set(services)
    seen: set[tuple[str, ...]] = set()
    for name, svc in services.items():
        cmd = svc.get("command")
        if not cmd or (isinstance(cmd, list) and Path(cmd[0]).name != "plantlink"):
            continue
        argv = cmd if isinstance(cmd, list) else shlex.split(cmd)
        seen.add(check_command_line([str(a) for a in argv], f"{COMPOSE.name}: {name}"))
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on {dep}, which is not a service"
        env = svc.get("environment") or {}
        for tok in [*argv, *(env.values() if isinstance(env, dict) else [])]:
            parts = urlsplit(str(tok))
            if parts.scheme and parts.netloc:  # a URL names a service of this file
                assert parts.hostname in services, f"{name}: {parts.hostname} ({tok}) is not a service of the file"
    assert ("ingest",) in seen
