"""Tables of identity and the audit trail (``plantlink.auth``, ``plantlink.audit``), on the shared ``metadata``.

Secrets are never stored: passwords as argon2 hashes, API token and session secrets as sha256 of a 256-bit random
value. Revisions ``0002_auth`` and ``0004_login_throttle`` create the same tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from plantlink.store.tables import Id, metadata

auth_users = sa.Table(
    "auth_users",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("password_changed_us", sa.BigInteger, nullable=False),
)

#: One role per (user, site); site "*" means every site.
auth_roles = sa.Table(
    "auth_roles",
    metadata,
    sa.Column("user_id", Id, sa.ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("site", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_us", sa.BigInteger, nullable=True),
    sa.Column("last_used_us", sa.BigInteger, nullable=True),
    sa.Index("ix_auth_tokens_user", "user_id"),
)

#: Browser sessions, keyed by sha256 of the cookie's secret.
auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", Id, sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
    sa.Column("last_seen_us", sa.BigInteger, nullable=False),
    sa.Column("client", sa.String(100), nullable=True),
    sa.Index("ix_auth_sessions_user", "user_id"),
)

#: Login throttling (``plantlink.auth.throttle``): one row per (user, address) pair, per user name (address NULL)
#: and per address (user NULL), keyed by ``key``. Rows are written only for attempts that were let through.
auth_login_throttle = sa.Table(
    "auth_login_throttle",
    metadata,
    sa.Column("key", sa.String(220), primary_key=True),
    sa.Column("user_name", sa.String(100), nullable=True),
    sa.Column("address", sa.String(100), nullable=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("window_start_us", sa.BigInteger, nullable=False),
    sa.Column("blocked_until_us", sa.BigInteger, nullable=False),
    sa.Column("last_failure_us", sa.BigInteger, nullable=True),
    sa.Column("last_success_us", sa.BigInteger, nullable=True),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    sa.Index("ix_auth_login_throttle_user", "user_name"),
    sa.Index("ix_auth_login_throttle_address", "address"),
    sa.Index("ix_auth_login_throttle_updated", "updated_us"),
)

#: Append-only, hash-chained: hash = sha256(prev_hash + canonical JSON of the row). Ids are gapless (1, 2, ...).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("site", sa.String(64), nullable=True),
    sa.Column("target", sa.String(300), nullable=True),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_ts", "ts_us"),
)

#: The chain's head (one row, id=1): the last id and hash. Catches a deleted tail, serialises appenders.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

#: Per-installation secret keys shared by every API process on this store (``plantlink.auth.keys``): the CSRF
#: key, created once (from the data directory's ``secrets/csrf.key`` when one exists) and read by every replica.
#: Revision ``0008_shared_keys`` creates it.
auth_keys = sa.Table(
    "auth_keys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)
