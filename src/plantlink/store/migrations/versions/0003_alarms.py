"""Alarm system: alarm_journal, alarm_states, notify_deliveries.

Revision ID: 0003_alarms
Revises: 0002_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_alarms"
down_revision = "0002_auth"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alarm_journal",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
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
    )
    op.create_index("ix_alarm_journal_ts", "alarm_journal", ["ts_us"])
    op.create_index("ix_alarm_journal_alarm_ts", "alarm_journal", ["alarm", "ts_us"])
    op.create_table(
        "alarm_states",
        sa.Column("alarm", sa.String(400), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("since_us", sa.BigInteger, nullable=False),
        sa.Column("activated_us", sa.BigInteger, nullable=True),
        sa.Column("shelved_until_us", sa.BigInteger, nullable=True),
        sa.Column("shelve_reason", sa.Text, nullable=True),
        sa.Column("by", sa.String(200), nullable=True),
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
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
    )
    op.create_index("ix_notify_deliveries_status", "notify_deliveries", ["status", "updated_us"])


def downgrade() -> None:
    op.drop_table("notify_deliveries")
    op.drop_table("alarm_states")
    op.drop_table("alarm_journal")
