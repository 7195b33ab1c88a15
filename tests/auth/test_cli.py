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


def test_users_and_tokens(data_dir: Path) -> None:
    code, out = run(data_dir, "users", "add", "alice", "--role", "windsor=operator", "--role", "detroit=viewer")
    assert code == 0, out
    password = re.search(r"password \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
    svc = AuthService.open(data_dir, settings=FAST)
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


def test_audit_verify_and_export(data_dir: Path) -> None:
    run(data_dir, "users", "add", "=cmd", "--role", "windsor=viewer")  # invalid name: refused
    run(data_dir, "users", "add", "alice", "--role", "windsor=viewer")
    svc = AuthService.open(data_dir, settings=FAST)
    svc.audit.record("control.write", "=evil()", "windsor", "t", {"v": 1})
    code, out = run(data_dir, "audit", "verify")
    assert code == 0 and "OK: 2 records" in out
    code, out = run(data_dir, "audit", "export", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and rows[1][2] == "auth.user_created" and rows[2][3] == "'=evil()"
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
