"""A store that cannot be opened says so once, clearly: the URL without its password, the problem, what to do.

Against the real PostgreSQL: a missing database, a role that does not exist, a port nothing listens on, and a
schema revision newer than this code (on SQLite too). The shared test server trusts every local connection
(pg_hba ``trust``) and accepts any password, so the wrong password is tried on a private cluster made for the test
with password authentication (``initdb --auth=scram-sha-256``, on a free port; as root, run as ``postgres``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from plantlink.errors import StoreOpenError, StoreUnavailable
from plantlink.store import Store, default_url, migrate
from tests.conftest import IN_CI
from tests.store.conftest import PG_ADMIN
from tests.waiting import patience

SECRET = "hunter2-not-shown"


def _url(**parts: object) -> str:
    """The test server's URL with ``parts`` replaced (a password that must never be shown, by default)."""
    return sa.make_url(PG_ADMIN).set(**{"password": SECRET, **parts}).render_as_string(hide_password=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open_fails(url: str) -> StoreOpenError:
    with pytest.raises(StoreOpenError) as info:
        Store.open(url)
    err = info.value
    assert SECRET not in str(err) and SECRET not in err.url and "***" in err.url
    assert str(err).startswith(f"cannot open the store at {err.url}: ") and err.field == "store_url"
    return err


def test_a_missing_database_names_it_and_how_to_create_it(pg_url: str) -> None:
    name = f"plantlink_missing_{uuid.uuid4().hex[:8]}"
    err = _open_fails(_url(database=name))
    assert not isinstance(err, StoreUnavailable)
    assert f"the database {name!r} does not exist" in str(err) and f"createdb -O postgres {name}" in str(err)


def test_an_unknown_role_is_a_credentials_error(pg_url: str) -> None:
    err = _open_fails(_url(username=f"plantlink_nobody_{uuid.uuid4().hex[:8]}"))
    assert not isinstance(err, StoreUnavailable)
    assert "the server refused the user or password" in str(err) and "pg_hba.conf" in str(err)


def test_a_server_that_does_not_answer_is_unavailable() -> None:
    err = _open_fails(_url(port=_closed_port(), query={"connect_timeout": "5"}))
    assert isinstance(err, StoreUnavailable) and (err.status, err.code) == (503, "unavailable")
    assert "the server does not answer" in str(err) and "start it" in str(err)


def test_a_url_that_does_not_parse_hides_its_password() -> None:
    with pytest.raises(StoreOpenError) as info:
        Store.open(f"postgresql+psycopg://u:{SECRET}@host:notaport/db")
    assert SECRET not in str(info.value) and "invalid store URL" in str(info.value)


def test_a_schema_newer_than_the_code_is_refused_and_left_alone(store_url: str) -> None:
    Store.open(store_url).close()
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as c:
            c.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(StoreOpenError, match="its schema is at revision '9999_future', which a newer "
                                                 f"plantlink wrote \\(this one knows up to '{migrate.head()}'\\)"):
            Store.open(store_url)
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "9999_future"
    finally:
        engine.dispose()


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path, pg_url: str) -> None:
    name = f"plantlink_missing_{uuid.uuid4().hex[:8]}"
    (tmp_path / "data").mkdir()
    got = subprocess.run([sys.executable, "-m", "plantlink.cli", "users", "list", "--data-dir", str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=patience(60),
                         env={"PATH": "/usr/bin:/bin", "PLANTLINK_STORE_URL": _url(database=name)})
    assert got.returncode == 2 and SECRET not in got.stderr
    assert got.stderr.startswith(f"error: cannot open the store at {_url(database=name).replace(SECRET, '***')}: "
                                 f"the database {name!r} does not exist"), got.stderr


def test_default_sqlite_is_untouched_by_these_checks(tmp_path: Path) -> None:
    s = Store.open(default_url(tmp_path))
    assert s.revision == migrate.head()
    s.close()


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture
def password_server() -> Iterator[str]:
    """A private PostgreSQL cluster that checks passwords: the URL of user ``postgres`` with its right password.
    Its directory is under /tmp itself (pytest's are private to root, and the server runs as ``postgres``)."""
    bindir = _pg_bin()
    if bindir is None:
        if IN_CI:
            pytest.fail("PostgreSQL's initdb is needed under CI and was not found")
        pytest.skip("PostgreSQL's initdb not found")
    root = Path(tempfile.mkdtemp(prefix="plantlink-pgcluster-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=patience(60))

    data, port, started = root / "data", _closed_port(), False
    try:
        (root / "pw").write_text("right-password\n", encoding="utf-8")
        if as_user:
            shutil.chown(root, "postgres")
            shutil.chown(root / "pw", "postgres")
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
            f"--pwfile={root / 'pw'}", "-E", "UTF8", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=8MB", "start")
        started = True
        yield f"postgresql+psycopg://postgres:right-password@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_a_wrong_password_is_a_credentials_error(password_server: str) -> None:
    right = Store.open(password_server)  # the cluster checks passwords: the right one opens it
    right.close()
    wrong = sa.make_url(password_server).set(password=SECRET).render_as_string(hide_password=False)
    err = _open_fails(wrong)
    assert not isinstance(err, StoreUnavailable)
    assert "password authentication failed" in str(err) and "the server refused the user or password" in str(err)
