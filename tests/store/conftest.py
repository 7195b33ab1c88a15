"""The store under test: SQLite in a temporary directory, and PostgreSQL in a database created for the test.

PostgreSQL is found at ``PLANTLINK_TEST_PG`` (default: the local server, trust auth). Unreachable: the test
is skipped locally and FAILS under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from plantlink.store import Store, default_url
from tests.conftest import IN_CI

PG_ADMIN = os.environ.get("PLANTLINK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _unreachable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is needed under CI and is unreachable: {why}")
    pytest.skip(f"PostgreSQL unreachable: {why}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as exc:  # no driver, no server, no auth: all mean unreachable here
        _unreachable(str(exc).splitlines()[0])
    name = f"plantlink_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_url(tmp_path / "data")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()
