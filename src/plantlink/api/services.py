"""The one way a route finds what it needs: the app's ``Services`` (``plantlink.services``).

``create_app`` keeps what it was built over at ``app.state.services``: the frozen ``Services`` themselves, or a
runtime whose services exist once it has started (``services_of``; 503 before). Routes depend on ``services``
and call ``services.<name>``; nothing else is looked up on ``app.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from plantlink.errors import Unavailable
from plantlink.services import Services, services_of

T = TypeVar("T")


def services(request: Request) -> Services:
    """FastAPI dependency: the services the app was built over (503 ``unavailable`` before they run)."""
    return services_of(getattr(request.app.state, "services", None))


def running(request: Request, pick: Callable[[Services], T | None], what: str) -> T:
    """What ``pick`` finds in the services (None: not running); 503 ``<what> is not running`` otherwise."""
    try:
        found = pick(services(request))
    except Unavailable:  # the runtime has not started
        found = None
    if found is None:
        raise Unavailable(f"{what} is not running")
    return found
