"""State intervals: open, close, query (clipped to a range). Functions on a SQLAlchemy connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from plantlink.errors import StoreError
from plantlink.store.records import END_CHANGE, EndReason, Interval
from plantlink.store.tables import meta, state_intervals

T = state_intervals


def _row(r: sa.Row) -> Interval:  # type: ignore[type-arg]
    return Interval(int(r.id), r.machine, r.line, r.state, int(r.start_us),
                    None if r.end_us is None else int(r.end_us), r.shift, r.end_reason)


def open_interval(conn: sa.Connection, machine: str, line: str, state: str, start_us: int,
                  shift: str | None) -> int:
    """Close whatever interval ``machine`` has open at ``start_us``, then open a new one."""
    close_interval(conn, machine, start_us, END_CHANGE)
    res = conn.execute(T.insert().values(machine=machine, line=line, state=state, start_us=start_us,
                                         end_us=None, shift=shift))
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def close_interval(conn: sa.Connection, machine: str, end_us: int, reason: EndReason) -> int:
    """Close the open interval(s) of ``machine`` at ``end_us`` (never before their start) for ``reason``.
    Returns how many."""
    q = T.update().where(T.c.machine == machine, T.c.end_us.is_(None))
    res = conn.execute(q.values(end_us=sa.case((T.c.start_us > end_us, T.c.start_us), else_=end_us),
                                end_reason=reason))
    return int(res.rowcount)


def open_intervals(conn: sa.Connection) -> list[Interval]:
    rows = conn.execute(T.select().where(T.c.end_us.is_(None)).order_by(T.c.machine, T.c.start_us))
    return [_row(r) for r in rows]


def _overlapping(cols: Sequence[sa.ColumnElement[Any]], start_us: int, end_us: int, machines: Sequence[str] | None,
                 line: str | None) -> sa.Select[Any]:
    if end_us < start_us:
        raise StoreError(f"reversed range: start_us {start_us} is after end_us {end_us}")
    q = sa.select(*cols).where(T.c.start_us < end_us, sa.or_(T.c.end_us.is_(None), T.c.end_us > start_us))
    if machines is not None:
        q = q.where(T.c.machine.in_(list(machines)))
    if line is not None:
        q = q.where(T.c.line == line)
    return q.order_by(T.c.machine, T.c.start_us, T.c.id)


def query(conn: sa.Connection, start_us: int, end_us: int, machines: Sequence[str] | None = None,
          line: str | None = None, open_until: int | None = None) -> list[Interval]:
    """Intervals overlapping [start_us, end_us), clipped to it, ordered by machine then start.

    An open interval ends at ``open_until`` (default ``end_us``): pass the current time for live figures."""
    cols = (T.c.id, T.c.machine, T.c.line, T.c.state, T.c.start_us, T.c.end_us, T.c.shift, T.c.end_reason)
    rows = conn.execute(_overlapping(cols, start_us, end_us, machines, line))
    until = end_us if open_until is None else min(end_us, open_until)
    out = []
    # plain tuples, one Interval each: a month of a site is tens of thousands of rows
    for i, machine, ln, state, s0, e0, shift, why in rows:
        s = max(int(s0), start_us)
        e = min(until if e0 is None else int(e0), end_us)
        if e > s:
            out.append(Interval(int(i), machine, ln, state, s, e, shift, why))
    return out


def spans(conn: sa.Connection, start_us: int, end_us: int, machines: Sequence[str] | None = None,
          open_until: int | None = None) -> list[tuple[str, int, int, str]]:
    """(machine, start, end, state) of the intervals :func:`query` answers, and nothing else: what the KPIs
    read over weeks (no object per row)."""
    cols = (T.c.machine, T.c.start_us, T.c.end_us, T.c.state)
    until = end_us if open_until is None else min(end_us, open_until)
    clipped = ((m, max(int(s0), start_us), min(until if e0 is None else int(e0), end_us), st)
               for m, s0, e0, st in conn.execute(_overlapping(cols, start_us, end_us, machines, None)))
    return [x for x in clipped if x[2] > x[1]]


def last_end(conn: sa.Connection, machine: str) -> int | None:
    """The end of the machine's newest closed interval."""
    return conn.execute(sa.select(sa.func.max(T.c.end_us)).where(T.c.machine == machine)).scalar()


def get_meta(conn: sa.Connection, key: str) -> int | None:
    v = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
    return None if v is None else int(v)


def set_meta(conn: sa.Connection, key: str, value: int) -> None:
    if conn.execute(meta.update().where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(meta.insert().values(key=key, value=value))
