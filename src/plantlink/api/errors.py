"""One JSON error envelope for every error the API returns::

    {"error": {"status": 422, "code": "invalid", "message": "...", "field": "start"}}

One handler for the whole tree of ``plantlink.errors``: a ``PlantlinkError`` answers its own ``status``,
``code``, ``message`` and ``field``. A fault of the server (an unexpected exception, or a ``PlantlinkError``
whose status is 500) answers 500 ``internal`` with a correlation ``id`` in the envelope and in the
``x-correlation-id`` header; the log has the same id with the traceback, the answer never the details.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantlink.errors import PlantlinkError

log = logging.getLogger("plantlink.api")

CORRELATION_HEADER = "x-correlation-id"


class ApiError(PlantlinkError):
    """An answer that no class of the tree names (e.g. 403 ``cross_origin``): status and code given here."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message, field)
        self.status, self.code = status, code


def envelope(status: int, code: str, message: str, field: str | None = None,
             correlation_id: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field is not None:
        body["field"] = field
    if correlation_id is None:
        return JSONResponse({"error": body}, status_code=status)
    body["id"] = correlation_id
    return JSONResponse({"error": body}, status_code=status, headers={CORRELATION_HEADER: correlation_id})


def internal(request: Request, exc: BaseException) -> JSONResponse:
    """500 ``internal`` for a fault of the server: a new correlation id, logged with the traceback."""
    cid = uuid.uuid4().hex
    log.error("internal error %s on %s %s: %s", cid, request.method, request.url.path, exc,
              exc_info=(type(exc), exc, exc.__traceback__))
    return envelope(500, "internal", f"internal error (correlation id {cid}); the server log has the details",
                    correlation_id=cid)


def answer(request: Request, exc: PlantlinkError) -> JSONResponse:
    """The envelope of ``exc``: its own status and code, or 500 ``internal`` when it is a fault of the server."""
    if exc.status == 500:
        return internal(request, exc)
    return envelope(exc.status, exc.code, exc.message or str(exc), exc.field)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the envelope."""

    @app.exception_handler(PlantlinkError)
    async def _plantlink(request: Request, exc: PlantlinkError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return envelope(422, "invalid", str(first.get("msg")), ".".join(loc) or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
        return envelope(exc.status_code, code.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal(request, exc)
