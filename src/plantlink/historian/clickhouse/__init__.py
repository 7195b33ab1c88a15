"""The ClickHouse historian backend (entry point ``plantlink.historians: clickhouse``).

``plugin(url, retention=None, **opts)`` builds a :class:`ClickHouseHistorian`; ``open_historian("clickhouse",
url="clickhouse://user:password@host:8123", database="plantlink")`` also opens it. ``chdb:///a/directory``
runs the ClickHouse engine inside this process (the ``chdb`` package). Needs ``pip install
'plantlink[clickhouse]'``. docs/historian-clickhouse.md describes the tables, a cluster and the limits.
"""

from __future__ import annotations

from plantlink.historian.clickhouse.store import ClickHouseHistorian

plugin = ClickHouseHistorian

__all__ = ["ClickHouseHistorian", "plugin"]
