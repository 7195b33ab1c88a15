"""Auth fixtures: a fast argon2 cost, a controllable clock, a service on SQLite (and PostgreSQL where asked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantlink.auth import AuthService, AuthSettings
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
def service(data_dir: Path, clock: Clock) -> Iterator[AuthService]:
    svc = AuthService.open(data_dir, settings=FAST, clock=clock)
    yield svc
    svc.close()
