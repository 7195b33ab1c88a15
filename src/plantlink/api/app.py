"""The FastAPI application. ``create_app(runtime)`` builds it around a running ``Runtime``.

Routers live in their own modules (one job each) and are included here; the HMI mounts itself on the same
app. Authentication middleware (``plantlink.auth``) sets ``request.state.principal``; every route asks
``plantlink.api.security`` for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from plantlink import __version__
from plantlink.api import errors

if TYPE_CHECKING:
    from plantlink.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="plantlink",
        version=__version__,
        description="Connect, monitor, control and exploit the data of brownfield plants.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    errors.install(app)

    @app.get("/healthz", tags=["health"], summary="Liveness: 200 while the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
