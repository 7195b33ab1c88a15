"""A whole plant model is posted to plan and apply: those routes take bodies up to 16 MiB, every other route
keeps the 1 MiB limit (``api.limits.BodyLimit``)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plantlink.api.limits import BodyLimit


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/api/v1/model/plan", echo, methods=["POST"]),
                            Route("/api/v1/sql", echo, methods=["POST"])])
    app.add_middleware(BodyLimit, max_bytes=1024 * 1024)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_model_routes_take_a_larger_body_and_the_others_do_not() -> None:
    async with client() as c:
        body = b"x" * (3 * 1024 * 1024)
        r = await c.post("/api/v1/model/plan", content=body)
        assert r.status_code == 200 and r.json() == {"bytes": len(body)}
        assert (await c.post("/api/v1/sql", content=body)).status_code == 413
        assert (await c.post("/api/v1/model/plan", content=b"x" * (16 * 1024 * 1024 + 1))).status_code == 413
