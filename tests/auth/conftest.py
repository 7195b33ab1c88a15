"""Auth fixtures: a fast argon2 cost, a controllable clock, a service on SQLite (and PostgreSQL where asked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantlink.auth import AuthService, AuthSettings
from plantlink.store import default_url
from tests.store.conftest import pg_url  # noqa: F401  (fixture)

FAST = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


class Clock:
    """Wall time that only moves when told."""

    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def backend() -> str:
    """The store of the ``service`` fixture: SQLite; a module that overrides this fixture with
    ``params=BACKENDS`` runs its tests on both."""
    return "sqlite"


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def service_url(backend: str, data_dir: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return default_url(data_dir)
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def service(data_dir: Path, clock: Clock, service_url: str) -> Iterator[AuthService]:
    svc = AuthService.open(data_dir, service_url, settings=FAST, clock=clock)
    yield svc
    svc.close()
