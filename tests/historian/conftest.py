"""Fixtures for the DuckDB-specific historian tests: an open DuckDB historian in a temporary directory.
(The backend-neutral tests are the contract suite, ``plantlink.testing.historian``.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantlink.historian import open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.testing.historian import DAY, T0, TAGS, M, S
from tests.historian.clickhouse_rig import ClickHouseRig, rig_url

__all__ = ["DAY", "T0", "M", "S"]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "hist" / "historian.duckdb"


@pytest.fixture
def hist(store_path: Path) -> Iterator[DuckDBHistorian]:
    h = open_historian("duckdb", path=store_path)
    assert isinstance(h, DuckDBHistorian)
    h.register_tags(TAGS)
    yield h
    h.close()


@pytest.fixture(scope="session")
def clickhouse_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseRig]:
    """The ClickHouse the historian tests use (``clickhouse_rig``): in-process unless ``CLICKHOUSE_URL``."""
    rig = ClickHouseRig(rig_url(tmp_path_factory.mktemp("clickhouse")))
    yield rig
    rig.drop_all()
