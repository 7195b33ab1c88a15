"""``POST /api/v1/sql``: one read-only SELECT over the historian's views, for power users
(``plantlink.services.sql``: admin at every site; audited).

Body: ``{"sql": "SELECT ...", "limit": 10000, "format": "json" | "csv" | "arrow"}``. JSON answers
``{columns: [{name, type}], rows: [[...]], row_count, truncated, limit}`` (times as ISO 8601 UTC, a value that
is not a finite number as null); CSV and Arrow (IPC stream) carry the rows, with ``x-sql-truncated`` and
``x-sql-rows`` headers. A statement that is not a single SELECT, file access, a bad query or one over the
time limit: 400 ``bad_query`` naming ``sql``.
"""

from __future__ import annotations

import io
import math
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from plantlink.api.routes.deps import Who, json_response, services
from plantlink.services import Services
from plantlink.services.sql import DEFAULT_ROWS, MAX_ROWS, MAX_SQL_CHARS

router = APIRouter(prefix="/api/v1", tags=["sql"])


class SqlIn(BaseModel):
    sql: str = Field(max_length=MAX_SQL_CHARS, description="one SELECT (or WITH ... SELECT) over samples, texts, "
                                                           "tags")
    limit: int = Field(DEFAULT_ROWS, ge=1, le=MAX_ROWS, description="at most this many rows (truncated: true)")
    format: Literal["json", "csv", "arrow"] = "json"


@router.post("/sql", summary="Read-only SQL over the historian (admin at every site; row and time limits)")
def run_sql(body: SqlIn, who: Who, rt: Services = Depends(services)) -> Response:
    answer = rt.sql.run(who, body.sql, body.limit)
    table = _plain_times(answer.table)
    headers = {"x-sql-rows": str(table.num_rows), "x-sql-truncated": str(answer.truncated).lower(),
               "cache-control": "no-store"}
    if body.format == "csv":
        out = io.BytesIO()
        pacsv.write_csv(table, out)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    if body.format == "arrow":
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, answer.table.schema) as writer:
            writer.write_table(answer.table)
        return Response(sink.getvalue(), media_type="application/vnd.apache.arrow.stream", headers=headers)
    cols = [{"name": f.name, "type": str(f.type)} for f in answer.table.schema]
    rows = [[_json(v) for v in row.values()] for row in table.to_pylist()]
    return json_response({"columns": cols, "rows": rows, "row_count": len(rows), "truncated": answer.truncated,
                          "limit": body.limit}, 200)


def _plain_times(table: pa.Table) -> pa.Table:
    """Timestamp columns as ISO 8601 UTC text (``2026-03-10T10:00:00.000000Z``)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            col = table.column(i).cast(pa.timestamp("us", tz="UTC"))
            table = table.set_column(i, f.name, pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ"))
    return table


def _json(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    return str(v)
