"""One handler for the error tree: the 4xx answers keep their envelope, and a fault of the server answers 500
``internal`` with a correlation id that the log has too (with the traceback), never 400 and never the details."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from plantlink.api.server import serve
from plantlink.errors import HistorianError, PlantlinkError
from plantlink.runtime import Runtime
from tests.api.conftest import install_header_auth, principal_header

Client = Callable[..., httpx.AsyncClient]


def _faulty_routes(app: FastAPI) -> None:
    install_header_auth(app)

    async def unexpected() -> None:
        raise RuntimeError("secret detail of a bug")

    async def generic() -> None:
        raise PlantlinkError("secret detail of a fault")

    async def historian() -> None:
        raise HistorianError("the historian could not open its file")

    app.add_api_route("/api/v1/_test/unexpected", unexpected)
    app.add_api_route("/api/v1/_test/generic", generic)
    app.add_api_route("/api/v1/_test/historian", historian)


@pytest.mark.parametrize("route", ["unexpected", "generic", "historian"])
async def test_a_fault_of_the_server_is_500_with_a_correlation_id_in_the_log(
        runtime: Runtime, caplog: pytest.LogCaptureFixture, route: str) -> None:
    caplog.set_level(logging.ERROR, logger="plantlink.api")
    handle = await serve(runtime, "127.0.0.1", 0, app_hook=_faulty_routes)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{handle.port}", timeout=30,
                                     headers=principal_header("ann:*=viewer")) as c:
            r = await c.get(f"/api/v1/_test/{route}")
    finally:
        await handle.stop()
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    cid = err["id"]
    assert err["status"] == 500 and err["code"] == "internal" and cid in err["message"]
    assert r.headers["x-correlation-id"] == cid
    assert "secret" not in r.text and "historian" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "plantlink.api" and cid in rec.getMessage()]
    assert len(logged) == 1, [rec.getMessage() for rec in caplog.records]
    assert logged[0].exc_info is not None and f"/api/v1/_test/{route}" in logged[0].getMessage()


def _error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == r.status_code
    return dict(body["error"])


async def test_clear_4xx_answers_keep_their_envelope(client: Client) -> None:
    ann = client("ann:windsor=viewer")
    tag = "windsor/a1/l1/m1/temp"
    r = await ann.get("/api/v1/history/raw", params={"tag": tag, "start": "2026-05-02T00:00:00Z",
                                                     "end": "2026-05-01T00:00:00Z"})
    assert _error(r) == {"status": 400, "code": "bad_query", "field": "end",
                         "message": "empty or reversed raw range: end must be after start"}
    r = await ann.get("/api/v1/tags/windsor/a1/l1/m1/nope")
    assert _error(r) == {"status": 404, "code": "not_found", "field": "tag",
                         "message": "unknown tag 'windsor/a1/l1/m1/nope'"}
    r = await ann.get("/api/v1/tags/detroit/d1/l2/m3/temp")
    assert _error(r) == {"status": 403, "code": "forbidden", "field": "site",
                         "message": "viewer rights at site 'detroit' are needed"}
    r = await ann.get("/api/v1/tags", params={"limit": 0})
    assert {k: v for k, v in _error(r).items() if k != "message"} == {"status": 422, "code": "invalid",
                                                                        "field": "limit"}
    r = await client(None).get("/api/v1/tags")
    assert _error(r) == {"status": 401, "code": "unauthenticated",
                         "message": "log in or send an API token (Authorization: Bearer ...)"}
    r = await ann.get("/api/v1/no/such/route")
    assert _error(r) == {"status": 404, "code": "not_found", "message": "Not Found"}
    r = await ann.get("/api/v1/audit")
    assert _error(r) == {"status": 403, "code": "forbidden", "field": "site",
                         "message": "admin rights at every site are needed to read records of all sites; "
                                    "name the site you administer (site=...)"}
