"""POST /api/v1/sql: one read-only SELECT over the historian's views, for admins of every site. The rows equal
the historian's raw read; writes, several statements and file access are refused (400, before or while
running, nothing changed); the row limit cuts with a flag; the time limit stops a cross join; audited."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from plantlink.audit import AuditLog
from plantlink.runtime import Runtime
from plantlink.samples import Quality, numeric_batch
from tests.api.conftest import settle

Client = Callable[..., httpx.AsyncClient]
TEMP = "windsor/a1/l1/m1/temp"
T0 = 1_773_144_000_000_000  # 2026-03-10T12:00:00Z
TS = [T0 + 250_000 + k * 1_500_000 for k in range(40)]
VALUES = [0.5 * k - 3.0 for k in range(40)]
QUALITY = [int(Quality.BAD) if k % 7 == 3 else int(Quality.GOOD) for k in range(40)]


async def seed(rt: Runtime) -> None:
    rt.bus.publish(numeric_batch([rt.tag_ids[TEMP]] * 40, TS, VALUES, QUALITY))
    await settle(rt)


async def post(c: httpx.AsyncClient, sql: str, **more: object) -> httpx.Response:
    return await c.post("/api/v1/sql", json={"sql": sql, **more})


async def test_rows_equal_the_historians_raw_read(client: Client, runtime: Runtime) -> None:
    await seed(runtime)
    r = await post(client(), f"SELECT ts, ts_us, value, quality FROM samples WHERE tag = '{TEMP}' "
                             f"AND ts_us >= {T0} AND ts_us < {T0 + 3_600_000_000} ORDER BY ts_us")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["ts", "ts_us", "value", "quality"]
    assert body["truncated"] is False and body["row_count"] == 40
    assert runtime.historian is not None
    raw = runtime.historian.raw(runtime.tag_ids[TEMP], T0, T0 + 3_600_000_000)
    want = list(zip(raw.column("ts").cast(pa.int64()).to_pylist(), raw.column("value").to_pylist(),
                    raw.column("quality").to_pylist(), strict=True))
    assert [tuple(row[1:]) for row in body["rows"]] == want
    assert [tuple(row[1:]) for row in body["rows"]] == list(zip(TS, VALUES, QUALITY, strict=True))
    assert body["rows"][0][0] == "2026-03-10T12:00:00.250000Z"
    # an aggregate, checked by hand: the good samples' mean
    r = await post(client(), f"WITH g AS (SELECT value FROM samples WHERE tag = '{TEMP}' AND quality >= 192) "
                             "SELECT count(*) AS n, avg(value) AS mean FROM g")
    good = [v for v, q in zip(VALUES, QUALITY, strict=True) if q >= 192]
    assert r.json()["rows"] == [[len(good), pytest.approx(sum(good) / len(good))]]


@pytest.mark.parametrize("sql", [
    "INSERT INTO tags VALUES (999, 'x', '', 'float')", "DROP TABLE tags", "COPY tags TO '/tmp/plantlink-sql.csv'",
    "ATTACH '/tmp/plantlink-sql.duckdb' AS x", "SELECT * FROM read_csv('/etc/passwd')", "INSTALL httpfs",
    "LOAD httpfs", "SELECT 1; DROP TABLE tags", "SET threads = 1", "PRAGMA database_list", "DELETE FROM tags",
    "SELECT * FROM query('DROP TABLE tags')", "", "SELEC 1"])
async def test_anything_but_one_select_is_refused(client: Client, runtime: Runtime, sql: str) -> None:
    r = await post(client(), sql)
    assert r.status_code in (400, 422), r.text
    if r.status_code == 400:
        assert r.json()["error"]["field"] == "sql", r.text
    n = await post(client(), "SELECT count(*) FROM tags")
    assert n.status_code == 200 and n.json()["rows"][0][0] == len(runtime.tag_ids)  # nothing changed


async def test_row_limit_cuts_with_a_flag_and_formats(client: Client, runtime: Runtime) -> None:
    await seed(runtime)
    r = await post(client(), "SELECT ts_us FROM samples ORDER BY ts_us", limit=7)
    assert r.json()["truncated"] is True and r.json()["row_count"] == 7
    assert [row[0] for row in r.json()["rows"]] == TS[:7]
    r = await post(client(), "SELECT ts_us, value FROM samples ORDER BY ts_us", limit=5, format="csv")
    assert r.headers["x-sql-truncated"] == "true"
    t = pacsv.read_csv(io.BytesIO(r.content))
    assert t.column("value").to_pylist() == VALUES[:5]
    r = await post(client(), "SELECT ts, value FROM samples ORDER BY ts_us", limit=100, format="arrow")
    t = pa.ipc.open_stream(r.content).read_all()
    assert r.headers["x-sql-truncated"] == "false"
    assert t.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist() == TS
    assert (await post(client(), "SELECT 1", limit=0)).status_code == 422


async def test_time_limit_stops_a_slow_query(client: Client, runtime: Runtime) -> None:
    runtime.services.sql.timeout_s = 0.5
    r = await post(client(), "SELECT count(*) FROM range(1000000000) a, range(1000000000) b")
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert "ran longer than 0.5 s and was stopped" in msg
    assert (await post(client(), "SELECT 42")).json()["rows"] == [[42]]  # the cursor works after it


async def test_only_an_admin_of_every_site_and_every_query_is_audited(client: Client, runtime: Runtime) -> None:
    for spec in ("ann:windsor=viewer", "eve:windsor=admin", "ed:*=engineer"):
        r = await post(client(spec), "SELECT 1")
        assert r.status_code == 403, (spec, r.text)
    assert (await post(client(), "SELECT 2 AS two")).status_code == 200
    assert (await post(client(), "DROP TABLE tags")).status_code == 400
    assert runtime.store is not None
    found = list(AuditLog(runtime.store.engine).query(kind="sql.query", newest_first=True, limit=5))
    assert [r.details["sql"] for r in found[:2]] == ["DROP TABLE tags", "SELECT 2 AS two"]
    assert found[1].actor == "admin" and found[1].details["rows"] == 1 and "error" in found[0].details
