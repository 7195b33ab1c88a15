"""Tables of the alarm system: the journal of every transition, each alarm's current state (restored after a
restart) and notification deliveries. Repository functions are in ``store.alarm_repo``."""

from __future__ import annotations

import sqlalchemy as sa

from plantlink.store.tables import Id, metadata

alarm_journal = sa.Table(
    "alarm_journal",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("alarm", sa.String(400), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("event", sa.String(24), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Index("ix_alarm_journal_ts", "ts_us"),
    sa.Index("ix_alarm_journal_alarm_ts", "alarm", "ts_us"),
)

alarm_states = sa.Table(
    "alarm_states",
    metadata,
    sa.Column("alarm", sa.String(400), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("since_us", sa.BigInteger, nullable=False),
    sa.Column("activated_us", sa.BigInteger, nullable=True),
    sa.Column("shelved_until_us", sa.BigInteger, nullable=True),
    sa.Column("shelve_reason", sa.Text, nullable=True),
    sa.Column("by", sa.String(200), nullable=True),
)

notify_deliveries = sa.Table(
    "notify_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("alarm", sa.String(400), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_notify_deliveries_status", "status", "updated_us"),
)
