"""Opening a DuckDB historian file: the connection (read-only for a replica that never writes) and the latest
values kept in it (``persisted``), or rebuilt from a scan for a store from before they were kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from plantlink.errors import HistorianError
from plantlink.historian.duckdb import blocks, persisted
from plantlink.historian.duckdb.latest import LatestCache
from plantlink.historian.duckdb.layout import TAGS_DDL, TEXT_DDL, WAL_DDL
from plantlink.historian.duckdb.maintenance import rebuild_latest


def connect(path: Path, read_only: bool, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """The connection, with the tables created (read-only: they must exist: a file some writer made)."""
    if read_only and not path.is_file():
        raise HistorianError(f"cannot open historian store {path} read-only: no such file")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
        blocks.register(con)  # the compacted days' blocks are read through these functions
        if not read_only:
            for ddl in (TAGS_DDL, TEXT_DDL, WAL_DDL):
                con.execute(ddl)
    except duckdb.Error as exc:
        raise HistorianError(f"cannot open historian store {path}: {exc}") from exc
    return con


def load_latest(con: duckdb.DuckDBPyConnection, latest: LatestCache, raw_days: set[int], tag_ids: set[int],
                read_only: bool) -> np.ndarray:
    """Fill ``latest`` with the persisted latest values (one read) and return the newest stored timestamp per
    tag id. A store from before they were kept is scanned once (and, unless read-only, they are written)."""
    if (persisted.exists(con) if read_only else persisted.create(con)):
        return persisted.load(con, latest)
    stored_max = rebuild_latest(con, latest, raw_days, tag_ids)
    if not read_only:
        persisted.save_all(con, latest, stored_max)
        latest.take_changed()
    return stored_max
