"""The embedded DuckDB historian backend (entry point ``plantlink.historians: duckdb``).

``plugin(path, retention=None, **opts)`` builds a :class:`DuckDBHistorian`; ``open_historian("duckdb",
path=...)`` also opens it. Options: ``flush_rows`` (rows buffered before a flush), ``threads``
and ``memory_limit`` (passed to DuckDB), ``sparse_minutes`` (compaction leaves the minutes of sparser tags in
raw; 30 samples a minute by default, 0 off); their defaults and environment variables are in ``settings``.
"""

from __future__ import annotations

from plantlink.historian.duckdb.store import DuckDBHistorian

plugin = DuckDBHistorian

__all__ = ["DuckDBHistorian", "plugin"]
