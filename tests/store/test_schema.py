"""The same migrations give the same schema on SQLite and on PostgreSQL: an empty database of each, migrated to
head, has the same tables, columns (name, nullability), primary keys and indexes; and each matches the tables the
code declares (``plantlink.store.tables.metadata``, compared by alembic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from plantlink.store import default_url, migrate
from plantlink.store.tables import metadata
from tests.store.conftest import pg_url  # noqa: F401  (fixture)


def _schema(engine: sa.Engine) -> dict[str, Any]:
    insp = sa.inspect(engine)
    out: dict[str, Any] = {}
    for t in sorted(insp.get_table_names()):
        out[t] = {
            "columns": sorted((c["name"], bool(c["nullable"])) for c in insp.get_columns(t)),
            "primary key": sorted(insp.get_pk_constraint(t)["constrained_columns"]),
            # a UNIQUE constraint is an index on PostgreSQL, a constraint on SQLite: compared as (columns, unique)
            "indexes": sorted({(tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)}
                              | {(tuple(u["column_names"]), True) for u in insp.get_unique_constraints(t)}),
            "foreign keys": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                                   for f in insp.get_foreign_keys(t)),
        }
    return out


def _migrated(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    assert migrate.current(engine) is None  # empty
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    return engine


def test_postgresql_and_sqlite_get_the_same_schema(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    lite, pg = _migrated(default_url(tmp_path)), _migrated(pg_url)
    try:
        a, b = _schema(lite), _schema(pg)
        assert set(a) == set(b) and len(a) > 10
        for table in a:
            assert a[table] == b[table], table
        for engine in (lite, pg):
            with engine.connect() as c:
                diff = compare_metadata(MigrationContext.configure(c), metadata)
            assert [d for d in diff if not _type_only(d)] == [], engine.dialect.name
    finally:
        lite.dispose()
        pg.dispose()


def _type_only(d: Any) -> bool:
    """alembic compares types loosely per dialect (SQLite reflects what it was given): types are not compared."""
    return isinstance(d, list) and all(x[0] == "modify_type" for x in d)
