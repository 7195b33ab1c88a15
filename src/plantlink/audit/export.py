"""CSV export of audit records, safe to open in a spreadsheet (no formula injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plantlink.audit.log import AuditRecord

HEADER = ["id", "time_utc", "kind", "actor", "site", "target", "details", "prev_hash", "hash"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text; one that a spreadsheet would read as a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _line(cells: list[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return buf.getvalue()


def csv_lines(records: Iterable[AuditRecord]) -> Iterator[str]:
    """One CSV line per record (RFC 4180, CRLF), header first: a generator, for streaming responses."""
    from plantlink.audit.log import canonical

    yield _line(list(HEADER))
    for r in records:
        when = datetime.fromtimestamp(r.ts_us / 1e6, UTC).isoformat(timespec="microseconds")
        yield _line([r.id, when, r.kind, r.actor, r.site, r.target, canonical(r.details), r.prev_hash, r.hash])
