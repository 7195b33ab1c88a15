"""Find a runtime service for a route: on ``app.state`` (tests, embedding) or on the app's runtime."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request

from plantlink.errors import Unavailable

T = TypeVar("T")


def app_service(request: Request, name: str, kind: type[T], what: str) -> T:
    """``app.state.<name>`` or ``app.state.runtime.<name>``; 503 naming ``what`` when it is not running."""
    svc = getattr(request.app.state, name, None)
    if svc is None:
        svc = getattr(getattr(request.app.state, "runtime", None), name, None)
    if not isinstance(svc, kind):
        raise Unavailable(f"{what} is not running")
    return svc
