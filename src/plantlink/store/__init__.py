"""The relational store (SQLAlchemy 2 + alembic): machine state intervals and downtime events.

SQLite under the data directory by default (``default_url``), PostgreSQL by URL
(``postgresql+psycopg://user@host/db``). ``Store.open(url)`` upgrades the schema to the newest revision.
"""

from plantlink.errors import NotFound, StoreError
from plantlink.store.base import Store, default_url
from plantlink.store.records import (
    END_CHANGE,
    END_CRASH,
    END_STOP,
    PARETO_BY,
    DowntimeEvent,
    Interval,
    Lost,
    Page,
    Pareto,
    ParetoRow,
    Run,
    Totals,
)

__all__ = [
    "END_CHANGE",
    "END_CRASH",
    "END_STOP",
    "PARETO_BY",
    "DowntimeEvent",
    "Interval",
    "Lost",
    "NotFound",
    "Page",
    "Pareto",
    "ParetoRow",
    "Run",
    "Store",
    "StoreError",
    "Totals",
    "default_url",
]
