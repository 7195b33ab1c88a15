"""Tables of the shop floor (``plantlink.auth.display``, ``plantlink.services.handover``), on the shared
``metadata``; revision ``0006_floor`` creates them.

* ``display_tokens``: read-only credentials of wallboards, scoped to a site or one line; only sha256 of the
  secret is stored. A token is revoked, never deleted (the audit names it).
* ``handover_notes``: shift handover notes per line, append-only (an edit is a new note naming the one it
  replaces).
"""

from __future__ import annotations

import sqlalchemy as sa

from plantlink.store.tables import Id, metadata

display_tokens = sa.Table(
    "display_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("line", sa.String(300), nullable=True),  # NULL: every line of the site
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_us", sa.BigInteger, nullable=True),
    sa.Column("last_used_us", sa.BigInteger, nullable=True),
)

handover_notes = sa.Table(
    "handover_notes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("line", sa.String(300), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("shift", sa.String(64), nullable=True),  # the shift's name when written (None: no shift running)
    sa.Column("shift_start_us", sa.BigInteger, nullable=False),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("replaces", sa.BigInteger, nullable=True),
    sa.Index("ix_handover_notes_line_ts", "line", "ts_us"),
)
