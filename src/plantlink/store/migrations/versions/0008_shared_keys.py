"""Secret keys in the store, so that every API process on one store signs and checks alike (API replicas).

Revision ID: 0008_shared_keys
Revises: 0007_trends
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_shared_keys"
down_revision = "0007_trends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_keys")
