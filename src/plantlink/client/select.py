"""Tag selection by ISA-95 path (exact, or fnmatch wildcards per path segment) and times given by the user."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from plantlink.errors import NotFound, QueryError

_WILD = re.compile(r"[*?\[]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def select(tags: str | Sequence[str], known: Sequence[str]) -> list[str]:
    """The tag paths among ``known`` (model order) that ``tags`` names: a path, a pattern with ``*``, ``?`` or
    ``[...]`` matched segment by segment (``*`` never crosses a ``/``), or a list of those. Each path once, in
    the order asked (a pattern's matches in model order). A path or pattern matching nothing: ``NotFound``."""
    items = [tags] if isinstance(tags, str) else list(tags)
    if not items:
        raise QueryError("name at least one tag (a path or a pattern)", field="tags")
    known_set = set(known)
    out: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str) or not item.strip("/ "):
            raise QueryError(f"a tag must be a path or a pattern, got {item!r}", field="tags")
        ref = item.strip().strip("/")
        if _WILD.search(ref):
            found = [p for p in known if _matches(ref, p)]
            if not found:
                raise NotFound(f"no tag matches the pattern {item!r}", field="tags")
            out.update(dict.fromkeys(found))
        elif ref in known_set:
            out[ref] = None
        else:
            raise NotFound(f"no tag {item!r} (give a full path site/area/line/machine/tag, or a pattern)",
                           field="tags")
    return list(out)


def _matches(pattern: str, path: str) -> bool:
    want, have = pattern.split("/"), path.split("/")
    return len(want) == len(have) and all(fnmatchcase(h, w) for w, h in zip(want, have, strict=True))


def to_us(moment: datetime | str, field: str) -> int:
    """A tz-aware ``datetime`` or an ISO 8601 string with an offset (``Z``, ``+02:00``) as epoch microseconds.
    A naive time is refused (whose clock would it be?)."""
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment.strip())
        except ValueError:
            raise QueryError(f"{field}: {moment!r} is not an ISO 8601 time (like 2026-05-01T06:00:00Z)",
                             field=field) from None
    elif isinstance(moment, datetime):
        parsed = moment
    else:
        raise QueryError(f"{field}: give a datetime or an ISO 8601 string, got {type(moment).__name__}",
                         field=field)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise QueryError(f"{field}: {moment!s} has no time zone; give an aware datetime (tzinfo=UTC) or add Z "
                         "or +hh:mm", field=field)
    return (parsed - _EPOCH) // timedelta(microseconds=1)


def time_range(start: datetime | str, end: datetime | str) -> tuple[int, int]:
    s, e = to_us(start, "start"), to_us(end, "end")
    if e <= s:
        raise QueryError(f"end ({end!s}) must be after start ({start!s})", field="end")
    return s, e


def every_us(every: str | timedelta) -> int:
    """A bucket width: a ``timedelta`` or ``"500ms"``, ``"60s"``, ``"5m"``, ``"1h"``, ``"1d"``."""
    if isinstance(every, timedelta):
        us = every // timedelta(microseconds=1)
    else:
        m = _DURATION.match(str(every))
        if not m:
            raise QueryError(f"every: {every!r} is not a duration (like 500ms, 60s, 5m, 1h, 1d, or a timedelta)",
                             field="every")
        us = int(float(m.group(1)) * _UNIT_US[m.group(2)])
    if us < 1000:
        raise QueryError(f"every must be at least 1 ms, got {every!r}", field="every")
    return us
