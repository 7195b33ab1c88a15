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


class _OnlyRaw(DuckDBHistorian):
    """The DuckDB historian without its own ``last_before``: the interface's default (raw, windows back)."""

    last_before = Historian.last_before



def test_the_default_last_before_passes_the_contract_check(tmp_path: Path) -> None:
    with _OnlyRaw(tmp_path / "historian.duckdb") as h:
        TestDuckDBHistorian().test_last_before_is_the_last_sample_however_old(h)
