"""Downtime events: open, close, list with filters and pages, reasons. Functions on a SQLAlchemy connection."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from plantlink.errors import NotFound, StoreError
from plantlink.store.records import DowntimeEvent, EndReason, Lost, Page
from plantlink.store.tables import downtime_events

T = downtime_events
MAX_PAGE = 1000


def _row(r: sa.Row) -> DowntimeEvent:  # type: ignore[type-arg]
    return DowntimeEvent(
        id=int(r.id), machine=r.machine, line=r.line, site=r.site, start_us=int(r.start_us),
        end_us=None if r.end_us is None else int(r.end_us),
        duration_s=None if r.duration_s is None else float(r.duration_s), state=r.state, micro=bool(r.micro),
        shift=r.shift, reason=r.reason, reason_group=r.reason_group, reason_by=r.reason_by,
        reason_at=None if r.reason_at is None else int(r.reason_at), comment=r.comment, end_reason=r.end_reason,
    )


def open_event(conn: sa.Connection, machine: str, line: str, site: str, start_us: int, state: str,
               shift: str | None) -> int:
    res = conn.execute(T.insert().values(machine=machine, line=line, site=site, start_us=start_us, state=state,
                                         micro=False, shift=shift))
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def close_event(conn: sa.Connection, event_id: int, end_us: int, state: str, micro: bool,
                reason: EndReason) -> DowntimeEvent:
    ev = get(conn, event_id)
    end = max(end_us, ev.start_us)
    conn.execute(T.update().where(T.c.id == event_id).values(
        end_us=end, duration_s=(end - ev.start_us) / 1e6, state=state, micro=micro, end_reason=reason))
    return get(conn, event_id)


def get(conn: sa.Connection, event_id: int) -> DowntimeEvent:
    r = conn.execute(T.select().where(T.c.id == event_id)).first()
    if r is None:
        raise NotFound(f"no downtime event with id {event_id}")
    return _row(r)


def open_events(conn: sa.Connection) -> list[DowntimeEvent]:
    return [_row(r) for r in conn.execute(T.select().where(T.c.end_us.is_(None)).order_by(T.c.id))]


def _filters(start_us: int | None, end_us: int | None, **eq: Any) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = []
    if start_us is not None:
        conds.append(sa.or_(T.c.end_us.is_(None), T.c.end_us > start_us))
    if end_us is not None:
        conds.append(T.c.start_us < end_us)
    for name in ("machine", "line", "site", "state", "micro", "shift"):
        if eq.get(name) is not None:
            conds.append(T.c[name] == eq[name])
    if eq.get("has_reason") is not None:
        conds.append(T.c.reason.is_not(None) if eq["has_reason"] else T.c.reason.is_(None))
    return conds


def page(conn: sa.Connection, *, start_us: int | None = None, end_us: int | None = None, limit: int = 50,
         offset: int = 0, **filters: Any) -> Page:
    """Events overlapping the range, newest first. Filters: machine, line, site, state, micro, shift, has_reason."""
    unknown = set(filters) - {"machine", "line", "site", "state", "micro", "shift", "has_reason"}
    if unknown:
        raise StoreError(f"unknown downtime filter(s): {', '.join(sorted(unknown))}")
    if not 1 <= limit <= MAX_PAGE:
        raise StoreError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise StoreError(f"offset must be >= 0, got {offset}")
    conds = _filters(start_us, end_us, **filters)
    total = conn.execute(sa.select(sa.func.count()).select_from(T).where(*conds)).scalar_one()
    q = T.select().where(*conds).order_by(T.c.start_us.desc(), T.c.id.desc()).limit(limit).offset(offset)
    return Page([_row(r) for r in conn.execute(q)], int(total), limit, offset)


def losses(conn: sa.Connection, start_us: int, end_us: int, **filters: Any) -> list[Lost]:
    """What the events overlapping the range lost (machine, state, reason, start, end), in one query, oldest
    first: the KPI's top reasons over weeks read thousands, and need nothing else of them. Filters as
    :func:`page`."""
    conds = _filters(start_us, end_us, **filters)
    q = sa.select(T.c.machine, T.c.state, T.c.reason, T.c.start_us, T.c.end_us).where(*conds) \
        .order_by(T.c.start_us, T.c.id)
    return [Lost(m, st, r, int(s), None if e is None else int(e)) for m, st, r, s, e in conn.execute(q)]


def set_reason(conn: sa.Connection, event_id: int, group: str | None, reason: str | None, by: str, at_us: int,
               comment: str | None = None) -> DowntimeEvent:
    """Assign (or with reason None, clear) an event's reason. Validation against the reason tree is the
    downtime engine's job: the store knows no plant."""
    get(conn, event_id)
    conn.execute(T.update().where(T.c.id == event_id).values(
        reason=reason, reason_group=group, reason_by=by, reason_at=at_us, comment=comment))
    return get(conn, event_id)


def delete(conn: sa.Connection, event_id: int) -> None:
    conn.execute(T.delete().where(T.c.id == event_id))


def mark_micro(conn: sa.Connection, event_ids: list[int], micro: bool) -> None:
    if event_ids:
        conn.execute(T.update().where(T.c.id.in_(event_ids)).values(micro=micro))
