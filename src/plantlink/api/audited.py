"""A route class that records requests refused before their service could judge them.

A body or query that does not validate (a missing field, a wrong type, not JSON) is answered 422 by FastAPI
before the route runs, so the service that audits every refusal never sees it. ``audited_route(kinds, record)``
makes a route class that, for the routes named in ``kinds`` (route name -> audit kind), calls
``record(request, kind, principal, message, field)`` first, when the caller is known: in a worker thread (an
audit append is a database write; the event loop serves the live stream meanwhile), and the 422 is answered
once it is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from plantlink.identity import Principal

Recorder = Callable[[Request, str, Principal, str, str | None], None]


def first_error(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first validation error's message and the field it names (without body/query/path)."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return str(first.get("msg", "invalid request"))[:200], where[:100] or None


def audited_route(kinds: Mapping[str, str], record: Recorder) -> type[APIRoute]:
    class AuditedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            kind = kinds.get(self.name)

            async def audited(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    who = getattr(request.state, "principal", None)
                    if kind is not None and isinstance(who, Principal):
                        message, field = first_error(exc)
                        await asyncio.to_thread(record, request, kind, who, message, field)
                    raise

            return audited

    return AuditedRoute
