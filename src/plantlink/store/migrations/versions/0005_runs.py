"""Runs of plantlink (when it observed the plant) and why each interval and downtime event ended.

Revision ID: 0005_runs
Revises: 0004_login_throttle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_runs"
down_revision = "0004_login_throttle"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
    )
    op.create_index("ix_runs_start", "runs", ["start_us"])
    with op.batch_alter_table("state_intervals") as t:
        t.add_column(sa.Column("end_reason", sa.String(16), nullable=True))
    with op.batch_alter_table("downtime_events") as t:
        t.add_column(sa.Column("end_reason", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("downtime_events") as t:
        t.drop_column("end_reason")
    with op.batch_alter_table("state_intervals") as t:
        t.drop_column("end_reason")
    op.drop_table("runs")
