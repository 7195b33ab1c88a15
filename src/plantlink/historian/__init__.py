"""The historian: stores sample batches and answers time-series queries. See ``base`` for the interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantlink import plugins
from plantlink.historian.base import AGGREGATES, Historian, Retention, SqlAnswer, TagMeta


def open_historian(backend: str, **options: Any) -> Historian:
    """Create a historian backend by plugin name (``duckdb``, later ``clickhouse``) and open it."""
    factory = plugins.load(plugins.HISTORIANS, backend)
    h: Historian = factory(**options)
    h.open()
    return h


def default_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "historian.duckdb"


__all__ = ["AGGREGATES", "Historian", "Retention", "SqlAnswer", "TagMeta", "default_path", "open_historian"]
