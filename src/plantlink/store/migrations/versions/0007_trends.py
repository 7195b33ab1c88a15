"""Trend annotations (notes on a machine's trend) and saved trend views.

Revision ID: 0007_trends
Revises: 0006_floor
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_trends"
down_revision = "0006_floor"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trend_annotations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("machine", sa.String(300), nullable=False),
        sa.Column("tag", sa.String(400), nullable=True),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_trend_annotations_machine_start", "trend_annotations", ["machine", "start_us"])
    op.create_table(
        "trend_views",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("machine", sa.String(300), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("pens", sa.Text, nullable=False),
        sa.Column("span_s", sa.BigInteger, nullable=True),
        sa.Column("start_us", sa.BigInteger, nullable=True),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("shared", sa.Boolean, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_trend_views_owner", "trend_views", ["owner"])
    op.create_index("ix_trend_views_site", "trend_views", ["site"])


def downgrade() -> None:
    op.drop_table("trend_views")
    op.drop_table("trend_annotations")
