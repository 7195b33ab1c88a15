"""The relational store (SQLAlchemy 2 + alembic): machine state intervals and downtime events.

SQLite under the data directory by default (``default_url``), PostgreSQL by URL
(``postgresql+psycopg://user@host/db``). ``Store.open(url)`` upgrades the schema to the newest revision.
"""

from plantlink.store.base import Store, default_url
from plantlink.store.records import (
    PARETO_BY,
    DowntimeEvent,
    Interval,
    NotFound,
    Page,
    Pareto,
    ParetoRow,
    StoreError,
    Totals,
)

__all__ = [
    "PARETO_BY",
    "DowntimeEvent",
    "Interval",
    "NotFound",
    "Page",
    "Pareto",
    "ParetoRow",
    "Store",
    "StoreError",
    "Totals",
    "default_url",
]
