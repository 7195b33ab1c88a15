"""The ClickHouse side of the historian tests: the in-process engine (``chdb://``, one per test session: it
starts once per process) or the server in ``CLICKHOUSE_URL``; each store its own database."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from plantlink.historian import Historian, Retention, open_historian
from plantlink.historian.clickhouse import ClickHouseHistorian
from plantlink.historian.clickhouse.client import Client, Retry


class ClickHouseRig:
    def __init__(self, url: str):
        self.url = url
        self.databases: set[str] = set()

    def database(self, location: Path) -> str:
        return "t_" + hashlib.sha1(str(location).encode()).hexdigest()[:16]

    def open(self, location: Path, retention: Retention | None = None, **options: object) -> Historian:
        """A store of its own per ``location`` (the same one again for the same location). The tables get no
        TTL: the suite's samples are from 2026-03 and a TTL on the server's clock could drop them at any merge;
        retention is checked through ``apply_retention``."""
        db = self.database(location)
        self.databases.add(db)
        h = open_historian("clickhouse", url=self.url, database=db, retention=retention, ttl=False,
                           create_database=True, retry=Retry(attempts=2, first_wait_s=0.1), **options)
        assert isinstance(h, ClickHouseHistorian)
        return h

    def drop_all(self) -> None:
        if not self.databases or self.url.startswith("chdb:"):
            return
        c = Client(self.url)
        c.open()
        for db in self.databases:
            c.command(f"DROP DATABASE IF EXISTS `{db}`")
        c.close()


def rig_url(tmp_root: Path) -> str:
    return os.environ.get("CLICKHOUSE_URL") or f"chdb://{tmp_root / 'chdb'}"
