"""`plantlink users ...` and `plantlink audit ...` through typer's CliRunner, on a real data directory."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from plantlink.auth import AuthService
from plantlink.auth.cli import audit_app, users_app
from tests.auth.conftest import FAST

app = typer.Typer()
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
runner = CliRunner()


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("plantlink.auth.cli.SETTINGS", FAST)


def run(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)], input=stdin)
    return r.exit_code, r.output


@pytest.fixture
def store(data_dir: Path) -> Path:
    """``data_dir`` holding a store, as ``plantlink run`` or ``plantlink demo`` leaves it."""
    AuthService.open(data_dir, settings=FAST).close()
    return data_dir


def test_users_and_tokens(store: Path) -> None:
    data_dir = store
    svc = AuthService.open(data_dir, settings=FAST)
    code, out = run(data_dir, "users", "add", "alice", "--role", "windsor=operator", "--role", "detroit=viewer")
    assert code == 0, out
    password = re.search(r"password \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
    assert svc.authenticate("alice", password).roles == {"windsor": "operator", "detroit": "viewer"}
    code, out = run(data_dir, "users", "add", "bob", "--role", "*=viewer", "--password-stdin",
                    stdin="bobs-long-password\n")
    assert code == 0 and "shown once" not in out and "bobs-long-password" not in out
    assert svc.authenticate("bob", "bobs-long-password").name == "bob"
    code, out = run(data_dir, "users", "add", "carol", "--role", "windsor")
    assert code == 1 and "SITE=ROLE" in out
    code, out = run(data_dir, "users", "list")
    assert code == 0 and re.search(r"alice\s+active\s+detroit=viewer,windsor=operator", out)
    assert password not in out
    code, out = run(data_dir, "users", "token", "create", "alice", "--name", "ci", "--role", "windsor=viewer",
                    "--days", "30")
    assert code == 0, out
    secret = re.search(r"secret \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
    token_id = re.search(r"token ([0-9a-f]{16})", out).group(1)  # type: ignore[union-attr]
    assert svc.token_principal(secret).roles == {"windsor": "viewer"}  # type: ignore[union-attr]
    code, out = run(data_dir, "users", "token", "create", "alice", "--name", "x", "--role", "windsor=admin")
    assert code == 1 and "exceeds" in out
    code, out = run(data_dir, "users", "token", "list")
    assert code == 0 and token_id in out and secret.split("_", 2)[2] not in out and "active" in out
    assert run(data_dir, "users", "token", "revoke", token_id)[0] == 0
    assert svc.token_principal(secret) is None
    assert "revoked" in run(data_dir, "users", "token", "list", "--user", "alice")[1]
    assert run(data_dir, "users", "disable", "alice")[0] == 0
    assert "disabled" in run(data_dir, "users", "list")[1]
    assert run(data_dir, "users", "enable", "alice")[0] == 0
    code, out = run(data_dir, "users", "reset-password", "alice")
    new = re.search(r"password \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
    assert svc.authenticate("alice", new).name == "alice"
    code, out = run(data_dir, "users", "disable", "nobody")
    assert code == 1 and "no user named 'nobody'" in out
    svc.close()


def test_audit_verify_and_export(store: Path) -> None:
    data_dir = store
    run(data_dir, "users", "add", "=cmd", "--role", "windsor=viewer")  # invalid name: refused
    run(data_dir, "users", "add", "alice", "--role", "windsor=viewer")
    svc = AuthService.open(data_dir, settings=FAST)
    svc.audit.record("control.write", "=evil()", "windsor", "t", {"v": 1})
    code, out = run(data_dir, "audit", "verify")
    assert code == 0 and "OK: 2 records" in out
    code, out = run(data_dir, "audit", "export", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and rows[1][2] == "auth.user_created" and rows[2][3] == "'=evil()"
    assert run(data_dir, "audit", "export", "--csv") == (code, out)  # the old flag, kept hidden
    assert run(data_dir, "audit", "export") == (code, out)  # CSV is the default
    code, out = run(data_dir, "audit", "export", "--format", "xml")
    assert code == 2 and "csv" in out
    target = data_dir / "a.csv"
    assert run(data_dir, "audit", "export", "--kind", "control.", "--out", str(target))[0] == 0
    assert len(list(csv.reader(target.open()))) == 2
    code, out = run(data_dir, "audit", "export", "--since", "yesterday")
    assert code == 1 and "ISO 8601" in out
    with svc.engine.begin() as c:
        c.execute(sa.text("UPDATE audit_log SET actor = 'bob' WHERE id = 1"))
    code, out = run(data_dir, "audit", "verify")
    assert code == 1 and "BROKEN at id 1" in out
    svc.close()


def test_every_command_has_help(tmp_path: Path) -> None:
    for args in (["users"], ["users", "add"], ["users", "list"], ["users", "roles"], ["users", "disable"],
                 ["users", "enable"], ["users", "reset-password"], ["users", "token"], ["users", "token", "create"],
                 ["users", "token", "list"], ["users", "token", "revoke"], ["audit"], ["audit", "verify"],
                 ["audit", "export"]):
        r = runner.invoke(app, [*args, "--help"])
        assert r.exit_code == 0 and "--help" in r.output, args
    assert "--data-dir" in runner.invoke(app, ["users", "add", "--help"]).output


ADMIN_COMMANDS = (["users", "list"], ["users", "add", "bob", "--role", "windsor=viewer"], ["users", "token", "list"],
                  ["users", "lockouts"], ["audit", "verify"], ["audit", "export"])


@pytest.mark.parametrize("args", ADMIN_COMMANDS, ids=" ".join)
def test_admin_commands_never_create_a_data_directory(tmp_path: Path, args: list[str]) -> None:
    """Without a data directory, each says where it looked and how to give one (exit 1), and creates nothing."""
    missing = tmp_path / "nowhere"
    code, out = run(missing, *args)
    assert code == 1 and f"no plantlink data directory at {missing}" in out and "--data-dir DIR" in out, out
    assert "PLANTLINK_DATA_DIR" in out and not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run(empty, *args)
    assert code == 1 and f"{empty} holds no plantlink store (plantlink.sqlite)" in out, out
    assert "--data-dir DIR" in out and list(empty.iterdir()) == []


def test_the_default_data_directory_is_named_and_never_created(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANTLINK_DATA_DIR", raising=False)
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and f"no plantlink data directory at {tmp_path / 'plantlink-data'}" in r.output
    assert list(tmp_path.iterdir()) == []


def test_the_environment_names_the_data_directory(store: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(store, "users", "add", "alice", "--role", "windsor=viewer")[0] == 0
    r = runner.invoke(app, ["users", "list"], env={"PLANTLINK_DATA_DIR": str(store)})
    assert r.exit_code == 0 and "alice" in r.output, r.output
    r = runner.invoke(app, ["audit", "verify"], env={"PLANTLINK_DATA_DIR": str(tmp_path / "other")})
    assert r.exit_code == 1 and f"no plantlink data directory at {tmp_path / 'other'}" in r.output
    assert not (tmp_path / "plantlink-data").exists()
