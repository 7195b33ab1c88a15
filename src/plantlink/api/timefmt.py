"""Times at the API edge: ISO 8601 strings with an offset, or epoch milliseconds, in; ISO UTC and epoch ms out.

Inside plantlink every instant is integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.errors import QueryError
from plantlink.samples import TS_TYPE

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INT = re.compile(r"^-?\d{1,16}$")
_SPACED_OFFSET = re.compile(r"(T[\d:.]+) (\d{2}:?\d{2})$")  # "+02:00" unescaped in a URL arrives as " 02:00"
#: Instants before 1970 or after 2200 are refused (a seconds-for-milliseconds mix-up shows up here).
_MIN_US, _MAX_US = 0, 7_258_118_400_000_000


def parse_time(text: str | int, field: str) -> int:
    """``text`` (ISO 8601 with an offset such as ``Z`` or ``+02:00``, or integer epoch milliseconds) as
    epoch microseconds. Raises ``QueryError`` naming ``field``."""
    if isinstance(text, int) or _INT.match(str(text).strip()):
        us = int(text) * 1000
    else:
        try:
            moment = datetime.fromisoformat(_SPACED_OFFSET.sub(r"\1+\2", str(text).strip()))
        except ValueError:
            raise QueryError(
                f"{field}: {text!r} is not a time; give ISO 8601 with an offset (2026-05-01T06:00:00Z) "
                "or epoch milliseconds", field=field) from None
        if moment.tzinfo is None:
            raise QueryError(f"{field}: {text!r} has no UTC offset; add Z or +hh:mm", field=field)
        us = (moment - _EPOCH) // _US
    if not _MIN_US <= us <= _MAX_US:
        raise QueryError(f"{field}: {text!r} is outside 1970..2200 (epoch times are in milliseconds)", field=field)
    return us


def iso(us: int) -> str:
    """Epoch microseconds as ISO 8601 UTC (``2026-05-01T06:00:00.000000Z``)."""
    return (_EPOCH + timedelta(microseconds=int(us))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stamp(us: int | None, prefix: str = "ts") -> dict[str, str | int | None]:
    """``{prefix: iso, prefix_ms: epoch ms}`` for one instant (None stays None)."""
    if us is None:
        return {prefix: None, f"{prefix}_ms": None}
    return {prefix: iso(us), f"{prefix}_ms": int(us) // 1000}


def iso_many(us: npt.ArrayLike) -> list[str]:
    """Vectorised :func:`iso`."""
    arr = pa.array(np.asarray(us, dtype=np.int64), pa.int64()).cast(TS_TYPE)
    out: list[str] = pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
    return out


def ms_many(us: npt.ArrayLike) -> list[int]:
    out: list[int] = (np.asarray(us, dtype=np.int64) // 1000).tolist()
    return out
