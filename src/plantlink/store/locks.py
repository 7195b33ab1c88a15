"""Serialising writers across processes: the one place that speaks a dialect's locking.

``hold(conn, name)`` keeps an exclusive lock called ``name`` until ``conn``'s transaction ends, so that writers
in every process that share the store queue there (the audit trail's chain head, the schema migrations).
PostgreSQL: a transaction-level advisory lock (released at commit or rollback, also when the process dies).
SQLite: nothing to do here, as the database has one writer at a time: the caller's first statement must then be
a write (an UPDATE), which takes the database's write lock for the rest of the transaction.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa


def key(name: str) -> int:
    """The advisory lock key of ``name``: a stable signed 64-bit number (the same in every process)."""
    return int.from_bytes(hashlib.sha256(f"plantlink.{name}".encode()).digest()[:8], "big", signed=True)


def hold(conn: sa.Connection, name: str) -> None:
    """Take the lock ``name`` for the rest of ``conn``'s transaction (waits while another transaction holds it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key(name)})
