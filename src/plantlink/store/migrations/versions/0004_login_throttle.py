"""Login throttling state in the store (it survives a restart): auth_login_throttle.

Revision ID: 0004_login_throttle
Revises: 0003_alarms
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_login_throttle"
down_revision = "0003_alarms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_login_throttle",
        sa.Column("key", sa.String(220), primary_key=True),
        sa.Column("user_name", sa.String(100), nullable=True),
        sa.Column("address", sa.String(100), nullable=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start_us", sa.BigInteger, nullable=False),
        sa.Column("blocked_until_us", sa.BigInteger, nullable=False),
        sa.Column("last_failure_us", sa.BigInteger, nullable=True),
        sa.Column("last_success_us", sa.BigInteger, nullable=True),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_auth_login_throttle_user", "auth_login_throttle", ["user_name"])
    op.create_index("ix_auth_login_throttle_address", "auth_login_throttle", ["address"])
    op.create_index("ix_auth_login_throttle_updated", "auth_login_throttle", ["updated_us"])


def downgrade() -> None:
    op.drop_table("auth_login_throttle")
