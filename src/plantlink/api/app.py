"""The FastAPI application. ``create_app(runtime)`` builds it around a ``Runtime`` (or its frozen ``Services``):
every route finds what it needs through ``plantlink.api.services.services`` (``app.state.services``).

Routers live in their own modules (``plantlink.api.routes``) and are included here; the HMI mounts itself
on the same app. Authentication middleware (``plantlink.auth``) sets ``request.state.principal`` (for HTTP and
WebSocket scopes); every route asks ``plantlink.api.security`` for it. Install it with ``auth`` (a function
that adds middleware to the app) or through ``server.serve(..., app_hook=...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from plantlink import __version__
from plantlink.api import errors
from plantlink.api.limits import BodyLimit
from plantlink.api.live import LiveHub

if TYPE_CHECKING:
    from plantlink.runtime import Runtime
    from plantlink.services import Services


def create_app(runtime: Runtime | Services, *, auth: Callable[[FastAPI], Any] | None = None,
               live: LiveHub | None = None) -> FastAPI:
    """``runtime``: a runtime (its services are looked up when a request comes, once it has started) or the
    services themselves (tests and embedding code hand in their own parts)."""
    hub = live or LiveHub(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.live.stop()  # the hub in place at shutdown (an app hook may have replaced it)
        sessions = getattr(app.state, "sessions", None)  # plantlink.auth's watch over live connections
        if sessions is not None:
            await sessions.stop()

    app = FastAPI(
        title="plantlink",
        version=__version__,
        description="Connect, monitor, control and exploit the data of brownfield plants.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = runtime
    app.state.live = hub
    errors.install(app)
    app.add_middleware(BodyLimit)  # 413 for request bodies over 1 MiB (PLANTLINK_MAX_BODY_BYTES)

    @app.get("/healthz", tags=["health"], summary="Liveness: 200 while the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    from plantlink.api.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    if auth is not None:
        auth(app)
    return app
