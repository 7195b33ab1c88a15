"""The plant as the API sees it: the services' one index (``plantlink.services.plant``) and paging.

``services_of(x)`` finds the ``Services`` of a running runtime (or takes them as they are): the routes and the
encoders in ``queries``/``kpi`` accept either, so that embedding code and tests may hand in a runtime.
"""

from __future__ import annotations

from typing import Any

from plantlink.errors import Unavailable
from plantlink.identity import Caller, Role
from plantlink.services import Services
from plantlink.services.plant import (
    DEFAULT_PAGE,
    MAX_PAGE,
    AccessDenied,
    LineRef,
    MachineRef,
    NotFound,
    PlantIndex,
    check_page,
    check_range,
)

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "AccessDenied", "Caller", "LineRef", "MachineRef", "NotFound",
           "PlantIndex", "Role", "check_page", "check_range", "index", "page", "services_of"]


def services_of(holder: Any) -> Services:
    """``holder`` itself when it is the ``Services``, else its ``services`` (a started runtime's)."""
    if isinstance(holder, Services):
        return holder
    found = getattr(holder, "services", None)
    if not isinstance(found, Services):
        raise Unavailable("the runtime is not started: no services yet")
    return found


def index(holder: Any) -> PlantIndex:
    """The one plant index of a runtime (or of its services)."""
    return services_of(holder).plant


def page(items: list[object], total: int, limit: int, offset: int) -> dict[str, object]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}
