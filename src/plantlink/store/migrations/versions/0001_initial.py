"""Initial tables: state_intervals, downtime_events, meta.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "state_intervals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("machine", sa.String(300), nullable=False),
        sa.Column("line", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("shift", sa.String(64), nullable=True),
    )
    op.create_index("ix_state_intervals_machine_start", "state_intervals", ["machine", "start_us"])
    op.create_index("ix_state_intervals_line_start", "state_intervals", ["line", "start_us"])
    op.create_table(
        "downtime_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("machine", sa.String(300), nullable=False),
        sa.Column("line", sa.String(200), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("micro", sa.Boolean, nullable=False),
        sa.Column("shift", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("reason_group", sa.String(200), nullable=True),
        sa.Column("reason_by", sa.String(200), nullable=True),
        sa.Column("reason_at", sa.BigInteger, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
    )
    op.create_index("ix_downtime_events_machine_start", "downtime_events", ["machine", "start_us"])
    op.create_index("ix_downtime_events_line_start", "downtime_events", ["line", "start_us"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_table("downtime_events")
    op.drop_table("state_intervals")
