"""The plant as the API sees it: the services' one index (``plantlink.services.plant``) and paging.

``services_of(x)`` finds the ``Services`` of a running runtime (or takes them as they are): the routes and the
encoders in ``queries``/``kpi`` accept either, so that embedding code and tests may hand in a runtime.
"""

from __future__ import annotations

from typing import Any

from plantlink.identity import Caller, Role
from plantlink.services import services_of
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


def index(holder: Any) -> PlantIndex:
    """The one plant index of a runtime (or of its services)."""
    return services_of(holder).plant


def page(items: list[object], total: int, limit: int, offset: int) -> dict[str, object]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}
