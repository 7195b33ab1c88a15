"""Read-only SQL over the historian for power users (``DuckDBHistorian.sql``).

* One statement, a ``SELECT`` (or ``WITH ... SELECT``), as DuckDB's own parser types it
  (``duckdb.extract_statements``); anything else is refused before it runs.
* It runs on a dedicated cursor, after ``SET enable_external_access = false`` (no file, network or extension
  access for the whole database: ``read_csv``, ``COPY``, ``ATTACH``, ``INSTALL``/``LOAD`` fail; the
  historian itself never reads outside its own file), inside a transaction that is always rolled back.
* ``samples(tag, ts, ts_us, value, quality)`` (numeric samples of every day partition) and ``texts`` (text
  samples, same columns) are temporary views created in that transaction; ``tags(tag_id, path, unit, type)``
  is the table itself.
* At most ``limit`` rows (the query is wrapped in ``LIMIT limit + 1``: the extra row says it was cut), and
  at most ``timeout_s`` seconds (a timer interrupts the cursor).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import duckdb

from plantlink.errors import QueryError
from plantlink.historian.base import SqlAnswer
from plantlink.historian.duckdb.layout import raw as raw_rows

_TS = "(TIMESTAMPTZ '1970-01-01 00:00:00+00' + to_microseconds(s.ts))"


def check(query: str) -> str:
    """The one SELECT statement of ``query`` (its text, without a trailing semicolon); QueryError otherwise."""
    if not isinstance(query, str) or not query.strip():
        raise QueryError("give a SELECT statement", field="sql")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"the SQL does not parse: {exc}", field="sql") from None
    if len(statements) != 1:
        raise QueryError(f"give one statement, got {len(statements)}", field="sql")
    st = statements[0]
    if st.type != duckdb.StatementType.SELECT:
        raise QueryError(f"only a SELECT (or WITH ... SELECT) is allowed, got {st.type.name}", field="sql")
    return str(st.query)


def views(raw_days: Iterable[int]) -> list[str]:
    """The statements that create the temporary views over the day partitions present."""
    parts = [f"SELECT tag_id, ts, value, quality FROM {raw_rows(d)}" for d in sorted(raw_days)]
    raw = " UNION ALL ".join(parts) if parts else \
        "SELECT NULL::UINTEGER AS tag_id, NULL::BIGINT AS ts, NULL::DOUBLE AS value, NULL::UTINYINT AS quality " \
        "WHERE false"
    cols = f"t.path AS tag, {_TS} AS ts, s.ts AS ts_us, s.value, s.quality"
    return [f"CREATE OR REPLACE TEMP VIEW samples AS SELECT {cols} FROM ({raw}) s JOIN tags t USING (tag_id)",
            f"CREATE OR REPLACE TEMP VIEW texts AS SELECT {cols} FROM text_samples s JOIN tags t USING (tag_id)"]


class SqlRunner:
    """Runs checked queries on its own cursor, one at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._cur = con.cursor()
        self._cur.execute("SET enable_external_access = false")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._cur.close()

    def run(self, query: str, raw_days: Iterable[int], limit: int, timeout_s: float) -> SqlAnswer:
        text = check(query)
        start = time.monotonic()
        if not self._lock.acquire(timeout=timeout_s):
            raise QueryError(f"another SQL query is running; try again (waited {timeout_s:g} s)", field="sql")
        try:
            left = max(timeout_s - (time.monotonic() - start), 0.01)
            return self._run(text, list(raw_days), limit, left, timeout_s)
        finally:
            self._lock.release()

    def _run(self, text: str, raw_days: list[int], limit: int, left_s: float, timeout_s: float) -> SqlAnswer:
        cur = self._cur
        timer = threading.Timer(left_s, cur.interrupt)
        cur.execute("BEGIN TRANSACTION")
        try:
            for stmt in views(raw_days):
                cur.execute(stmt)
            timer.start()
            result = cur.sql(f"SELECT * FROM (\n{text}\n) AS q LIMIT {int(limit) + 1}").to_arrow_table()
        except duckdb.InterruptException:
            raise QueryError(f"the query ran longer than {timeout_s:g} s and was stopped: narrow it (a time range "
                             "on ts_us, fewer tags, no cross join)", field="sql") from None
        except duckdb.PermissionException as exc:
            raise QueryError(f"refused: the SQL endpoint has no file, network or extension access ({exc})",
                             field="sql") from None
        except duckdb.Error as exc:
            raise QueryError(f"the query failed: {exc}", field="sql") from None
        finally:
            timer.cancel()
            cur.execute("ROLLBACK")
        truncated = result.num_rows > limit
        return SqlAnswer(result.slice(0, limit) if truncated else result, truncated)
