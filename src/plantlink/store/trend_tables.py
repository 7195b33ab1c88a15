"""Tables of the trends: notes people add on a machine's trend, and saved trend views."""

from __future__ import annotations

import sqlalchemy as sa

from plantlink.store.tables import Id, metadata

#: A note at a time (``end_us`` null) or over a span, on a machine's trend (optionally about one tag).
trend_annotations = sa.Table(
    "trend_annotations",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("machine", sa.String(300), nullable=False),
    sa.Column("tag", sa.String(400), nullable=True),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("text", sa.String(500), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Index("ix_trend_annotations_machine_start", "machine", "start_us"),
)

#: A user's saved trend: its pens (tag paths, JSON) and range (``span_s`` back from now, or start..end).
trend_views = sa.Table(
    "trend_views",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("machine", sa.String(300), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("pens", sa.Text, nullable=False),
    sa.Column("span_s", sa.BigInteger, nullable=True),
    sa.Column("start_us", sa.BigInteger, nullable=True),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("shared", sa.Boolean, nullable=False, default=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Index("ix_trend_views_owner", "owner"),
    sa.Index("ix_trend_views_site", "site"),
)
