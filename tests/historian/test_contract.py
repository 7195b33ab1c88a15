"""Every historian backend passes the one contract suite (``plantlink.testing.historian``): DuckDB, and
ClickHouse in this process through clickhouse-connect's ``chdb://`` mode (one engine for the test session,
one database per test), or against the server in ``CLICKHOUSE_URL`` when it is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantlink.historian import Historian, Retention, open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.testing.historian import HistorianContract
from tests.historian.clickhouse_rig import ClickHouseRig

BACKENDS = ["duckdb", "clickhouse"]


class TestHistorianContract(HistorianContract):
    backend: str
    rig: ClickHouseRig | None

    @pytest.fixture(autouse=True, params=BACKENDS)
    def _backend(self, request: pytest.FixtureRequest) -> Iterator[None]:
        self.backend = request.param
        self.rig = request.getfixturevalue("clickhouse_rig") if self.backend == "clickhouse" else None
        yield

    def make_historian(self, location: Path, retention: Retention | None = None) -> Historian:
        if self.rig is not None:
            return self.rig.open(location, retention)
        h = open_historian("duckdb", path=location / "historian.duckdb", retention=retention)
        assert isinstance(h, DuckDBHistorian)
        return h



class _OnlyRaw(DuckDBHistorian):
    """The DuckDB historian without its own ``last_before``: the interface's default (raw, windows back)."""

    last_before = Historian.last_before


def test_the_default_last_before_passes_the_contract_check(tmp_path: Path) -> None:
    with _OnlyRaw(tmp_path / "historian.duckdb") as h:
        t = TestHistorianContract()
        t.backend, t.rig = "duckdb", None
        t.test_last_before_is_the_last_sample_however_old(h)
