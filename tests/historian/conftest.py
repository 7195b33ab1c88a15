"""Fixtures for the historian tests: an open DuckDB historian in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantlink.historian import TagMeta, open_historian
from plantlink.historian.duckdb import DuckDBHistorian

# 2026-03-02 00:00:00 UTC, a day boundary, in microseconds
T0 = 1_772_409_600_000_000
S = 1_000_000
M = 60 * S
DAY = 86_400 * S


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "hist" / "historian.duckdb"


@pytest.fixture
def hist(store_path: Path) -> Iterator[DuckDBHistorian]:
    h = open_historian("duckdb", path=store_path)
    assert isinstance(h, DuckDBHistorian)
    h.register_tags(
        [TagMeta("line1/m1/temp", "degC"), TagMeta("line1/m1/speed", "rpm"), TagMeta("line1/m1/state", "", "string")]
    )
    yield h
    h.close()
