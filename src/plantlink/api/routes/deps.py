"""What every route needs: the caller, the services, times, pages. Responses are encoded straight to JSON
(``json_response``): large columnar answers skip FastAPI's per-item encoder."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi.responses import JSONResponse

from plantlink.api.params import Limit as Limit  # re-exported: the routes' page parameters
from plantlink.api.params import Offset as Offset
from plantlink.api.scope import DEFAULT_PAGE
from plantlink.api.security import current_principal
from plantlink.api.services import services as services  # re-exported: the one dependency of every route
from plantlink.api.timefmt import parse_time
from plantlink.errors import InvalidValue, QueryError
from plantlink.identity import Principal
from plantlink.samples import now_us

Who = Annotated[Principal, Depends(current_principal)]
TimeArg = Annotated[str | None, Query(description="ISO 8601 with offset (2026-05-01T06:00:00Z) or epoch ms")]
DEFAULT_LIMIT = DEFAULT_PAGE
#: The longest duration parameter (an aggregate bucket): ten years.
MAX_DURATION_US = 3650 * 86_400_000_000

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "min": 60_000_000, "h": 3_600_000_000,
            "d": 86_400_000_000}


def time_range(start: str | None, end: str | None, default_span_s: float = 3600.0) -> tuple[int, int]:
    """``[start, end)`` in epoch us; ``end`` defaults to now and ``start`` to ``default_span_s`` before it."""
    e = parse_time(end, "end") if end is not None else now_us()
    s = parse_time(start, "start") if start is not None else e - int(default_span_s * 1e6)
    return s, e


def optional_time(value: str | None, field: str) -> int | None:
    return None if value is None else parse_time(value, field)


def duration_us(text: str, field: str) -> int:
    """``"60s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"250ms"`` or a bare number of seconds (as in the plant model's
    YAML: a bare number was milliseconds here before, see docs/api.md)."""
    m = _DURATION.match(text)
    if not m:
        raise QueryError(f"{field}: {text!r} is not a duration (like 500ms, 60s, 5m, 1h, 1d)", field=field)
    us = float(m.group(1)) * _UNIT_US[m.group(2) or "s"]
    if not us <= MAX_DURATION_US:  # also infinite (a number of hundreds of digits)
        days = MAX_DURATION_US // 86_400_000_000
        raise InvalidValue(f"{field}: {text[:40]!r} is too long: at most {days} days", field)
    if int(us) <= 0:
        raise QueryError(f"{field} must be positive", field=field)
    return int(us)


def split_list(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated query values, flattened."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def json_response(content: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status_code)
