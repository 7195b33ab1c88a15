"""Bounded request parameters shared by the routers: every integer a request carries has bounds in the schema,
so that a value out of them (one too large for a database integer included) is answered 422 ``invalid`` naming
the parameter, before any query runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from plantlink.api.scope import MAX_PAGE

#: The range of a database integer (SQLite INTEGER, PostgreSQL and DuckDB BIGINT).
DB_INT_MIN, DB_INT_MAX = -(2**63), 2**63 - 1
#: The furthest a list may be paged.
MAX_OFFSET = 10_000_000

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, 1..{MAX_PAGE}")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]
#: The id of a stored object (a downtime event, ...): 1 up to the largest database integer.
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="the object's id")]


def db_int(description: str) -> Any:
    """A query integer whose finer bounds are checked by the route (400 ``bad_query``), within what a database
    integer holds (422 beyond)."""
    return Query(ge=DB_INT_MIN, le=DB_INT_MAX, description=description)
