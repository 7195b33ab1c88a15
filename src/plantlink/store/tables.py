"""The relational store's tables (SQLAlchemy Core). Migrations in ``migrations/`` create the same tables."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: 64-bit ids that still auto-increment on SQLite (which only does so for INTEGER PRIMARY KEY).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

state_intervals = sa.Table(
    "state_intervals",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("machine", sa.String(300), nullable=False),
    sa.Column("line", sa.String(200), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("shift", sa.String(64), nullable=True),
    sa.Column("end_reason", sa.String(16), nullable=True),
    sa.Index("ix_state_intervals_machine_start", "machine", "start_us"),
    sa.Index("ix_state_intervals_line_start", "line", "start_us"),
)

downtime_events = sa.Table(
    "downtime_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("machine", sa.String(300), nullable=False),
    sa.Column("line", sa.String(200), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("micro", sa.Boolean, nullable=False, default=False),
    sa.Column("shift", sa.String(64), nullable=True),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("reason_group", sa.String(200), nullable=True),
    sa.Column("reason_by", sa.String(200), nullable=True),
    sa.Column("reason_at", sa.BigInteger, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("end_reason", sa.String(16), nullable=True),
    sa.Index("ix_downtime_events_machine_start", "machine", "start_us"),
    sa.Index("ix_downtime_events_line_start", "line", "start_us"),
)

#: Each run of plantlink: from its start to its clean stop, or (``end_reason`` "crash") to its last known time.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("end_reason", sa.String(16), nullable=True),
    sa.Index("ix_runs_start", "start_us"),
)

#: Small key/value facts the engines keep across restarts (e.g. the state engine's last known time).
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
from plantlink.store import alarm_tables as _alarm_tables  # noqa: E402,F401  (alarm journal, states, deliveries)
from plantlink.store import auth_tables as _auth_tables  # noqa: E402,F401  (identity and audit tables)
from plantlink.store import floor_tables as _floor_tables  # noqa: E402,F401  (display tokens, handover notes)
from plantlink.store import trend_tables as _trend_tables  # noqa: E402,F401  (trend notes and saved views)
