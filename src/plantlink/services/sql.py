"""Read-only SQL over the historian for power users (``POST /api/v1/sql``).

Who may: an admin at every site (``*``) only. A query can read every tag of every site (the views do not
filter by site, and SQL can join anything), so the site rights of the rest of the API cannot be applied to
it: only a caller who may already read everything may run one. The checks (one SELECT, no file access, row
and time limits) are the historian's (``Historian.sql``); every query is audited (``sql.query``: who, the
text, rows, whether cut, time taken, or the error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from plantlink.errors import AccessDenied, PlantlinkError, QueryError, Unavailable
from plantlink.historian.base import SqlAnswer
from plantlink.identity import ALL_SITES, Principal

if TYPE_CHECKING:
    from plantlink.audit import AuditLog

__all__ = ["DEFAULT_ROWS", "MAX_ROWS", "MAX_SQL_CHARS", "TIMEOUT_S", "SqlReader", "SqlService", "may_run"]

DEFAULT_ROWS = 10_000
MAX_ROWS = 100_000
TIMEOUT_S = 10.0
MAX_SQL_CHARS = 20_000


class SqlReader(Protocol):
    def sql(self, query: str, *, limit: int, timeout_s: float) -> SqlAnswer: ...


def may_run(who: Principal) -> bool:
    return who.roles.get(ALL_SITES) == "admin"


class SqlService:
    def __init__(self, historian: Callable[[], object | None], audit: Callable[[], AuditLog | None],
                 timeout_s: float = TIMEOUT_S):
        self._historian, self._audit, self.timeout_s = historian, audit, timeout_s

    def run(self, who: Principal, query: str, limit: int = DEFAULT_ROWS) -> SqlAnswer:
        """The rows of ``query`` (at most ``limit``, at most ``MAX_ROWS``), audited whether it ran or failed."""
        if not may_run(who):
            raise AccessDenied("SQL reads every site's data: admin rights at every site are needed")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise QueryError(f"limit must be 1 to {MAX_ROWS}, got {limit!r}", field="limit")
        if not isinstance(query, str) or len(query) > MAX_SQL_CHARS:
            raise QueryError(f"give the SQL as text of at most {MAX_SQL_CHARS} characters", field="sql")
        historian = self._historian()
        if historian is None or not hasattr(historian, "sql"):
            raise Unavailable("the historian is not running")
        reader: SqlReader = historian
        start = time.monotonic()
        try:
            answer = reader.sql(query, limit=limit, timeout_s=self.timeout_s)
        except PlantlinkError as exc:
            self._record(who, query, {"error": str(exc)[:500], "ms": _ms(start)})
            raise
        self._record(who, query, {"rows": answer.table.num_rows, "truncated": answer.truncated, "ms": _ms(start)})
        return answer

    def _record(self, who: Principal, query: str, details: dict[str, object]) -> None:
        log = self._audit()
        if log is not None:
            log.record("sql.query", who.name, None, "sql", {"sql": query[:MAX_SQL_CHARS], **details})


def _ms(start: float) -> int:
    return round((time.monotonic() - start) * 1000)
