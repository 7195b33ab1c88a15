"""One JSON error envelope for every error the API returns::

    {"error": {"status": 422, "code": "invalid", "message": "...", "field": "start"}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantlink.api.scope import AccessDenied, NotFoundError
from plantlink.engines.downtime import ReasonError
from plantlink.errors import ConfigError, PlantlinkError, QueryError
from plantlink.store import NotFound


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def envelope(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the envelope."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(QueryError)
    async def _query(_: Request, exc: QueryError) -> JSONResponse:
        return envelope(400, "bad_query", str(exc), exc.field)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return envelope(404, "not_found", str(exc), exc.field)

    @app.exception_handler(NotFound)
    async def _store_not_found(_: Request, exc: NotFound) -> JSONResponse:
        return envelope(404, "not_found", str(exc))

    @app.exception_handler(AccessDenied)
    async def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return envelope(403, "forbidden", str(exc), "site")

    @app.exception_handler(ReasonError)
    async def _reason(_: Request, exc: ReasonError) -> JSONResponse:
        return envelope(400, "bad_reason", str(exc), "reason")

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return envelope(400, "bad_config", str(exc))

    @app.exception_handler(PlantlinkError)
    async def _pl(_: Request, exc: PlantlinkError) -> JSONResponse:
        return envelope(400, "refused", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return envelope(422, "invalid", str(first.get("msg")), ".".join(loc) or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
        return envelope(exc.status_code, code.get(exc.status_code, "http_error"), str(exc.detail))
