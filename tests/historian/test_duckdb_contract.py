"""The DuckDB historian passes the historian contract suite (``plantlink.testing.historian``)."""

from __future__ import annotations

from pathlib import Path

from plantlink.historian import Historian, Retention, open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.testing.historian import HistorianContract


class TestDuckDBHistorian(HistorianContract):
    def make_historian(self, location: Path, retention: Retention | None = None) -> Historian:
        h = open_historian("duckdb", path=location / "historian.duckdb", retention=retention)
        assert isinstance(h, DuckDBHistorian)
        return h
