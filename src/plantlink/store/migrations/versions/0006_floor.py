"""The shop floor: read-only display tokens of wallboards, and shift handover notes per line.

Revision ID: 0006_floor
Revises: 0005_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_floor"
down_revision = "0005_runs"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "display_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("line", sa.String(300), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_us", sa.BigInteger, nullable=True),
        sa.Column("last_used_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "handover_notes",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("line", sa.String(300), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("shift", sa.String(64), nullable=True),
        sa.Column("shift_start_us", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("replaces", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_handover_notes_line_ts", "handover_notes", ["line", "ts_us"])


def downgrade() -> None:
    op.drop_index("ix_handover_notes_line_ts", "handover_notes")
    op.drop_table("handover_notes")
    op.drop_table("display_tokens")
