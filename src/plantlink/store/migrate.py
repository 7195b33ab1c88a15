"""Run the store's alembic migrations programmatically (no alembic.ini needed).

The same revisions on SQLite and PostgreSQL. Processes that open one store at once migrate one after the other
(``locks.hold``), and a database that a newer plantlink migrated is refused (``opening.newer_schema``): this
version would not know its tables."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from plantlink.store import locks
from plantlink.store.opening import newer_schema

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The newest revision shipped with this version of plantlink."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    assert rev is not None
    return rev


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def known() -> set[str]:
    """Every revision this version of plantlink ships."""
    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest); ``StoreOpenError`` when it is at a revision
    this version does not know (a newer plantlink migrated it)."""
    cfg = _config()
    with engine.begin() as conn:
        locks.hold(conn, "migrate")
        at = MigrationContext.configure(conn).get_current_revision()
        if at is not None and at not in known():
            raise newer_schema(engine.url, at, head())
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def revisions() -> set[str]:
    """Every revision shipped with this version of plantlink (a database at none of them is newer)."""
    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
