"""Runs of plantlink: when it observed the plant. Functions on a SQLAlchemy connection.

A run begins when the state engine starts and ends at its clean stop (``end_reason`` "stop"). A run that is
still open when the next one begins did not stop cleanly: it is closed at the last known time ("crash").
Between two runs plantlink saw nothing: those are the *down windows* a production counter must not count
across (``engines.counters``).
"""

from __future__ import annotations

import sqlalchemy as sa

from plantlink.store.records import END_CRASH, END_STOP, Run
from plantlink.store.tables import runs

T = runs


def _row(r: sa.Row) -> Run:  # type: ignore[type-arg]
    return Run(int(r.id), int(r.start_us), None if r.end_us is None else int(r.end_us), r.end_reason)


def begin(conn: sa.Connection, start_us: int, last_known_us: int | None) -> tuple[int, list[Run]]:
    """Close runs left open (at ``last_known_us``, never before their start, as "crash"), then open a run at
    ``start_us``. Returns the new run's id and the runs closed."""
    left = [_row(r) for r in conn.execute(T.select().where(T.c.end_us.is_(None)).order_by(T.c.start_us))]
    for run in left:
        end = max(run.start_us, min(last_known_us if last_known_us is not None else run.start_us, start_us))
        conn.execute(T.update().where(T.c.id == run.id).values(end_us=end, end_reason=END_CRASH))
    res = conn.execute(T.insert().values(start_us=start_us, end_us=None, end_reason=None))
    closed = [_row(r) for r in conn.execute(T.select().where(T.c.id.in_([r.id for r in left])))]
    return int(res.inserted_primary_key[0]), closed  # type: ignore[index]


def end(conn: sa.Connection, run_id: int, end_us: int) -> None:
    """A clean stop of run ``run_id`` at ``end_us`` (never before its start)."""
    q = T.update().where(T.c.id == run_id)
    conn.execute(q.values(end_us=sa.case((T.c.start_us > end_us, T.c.start_us), else_=end_us), end_reason=END_STOP))


def listing(conn: sa.Connection, start_us: int, end_us: int) -> list[Run]:
    """Runs that began before ``end_us`` and had not ended before ``start_us``, oldest first."""
    q = T.select().where(T.c.start_us < end_us, sa.or_(T.c.end_us.is_(None), T.c.end_us >= start_us))
    return [_row(r) for r in conn.execute(q.order_by(T.c.start_us, T.c.id))]


def down_windows(conn: sa.Connection, start_us: int, end_us: int) -> tuple[list[int], list[int]]:
    """The open windows ``(lo, hi)`` overlapping ``[start_us, end_us)`` in which plantlink observed nothing:
    from the end of a run (its stop or last known time) to the start of the next, and, before the first run
    on record, the instant before it (data from before any recorded run is not continuous with it)."""
    q = T.select().where(T.c.start_us <= end_us).order_by(T.c.start_us, T.c.id)
    found = [_row(r) for r in conn.execute(q)]
    lo: list[int] = []
    hi: list[int] = []
    prev: Run | None = None
    for run in found:
        w_lo = run.start_us - 1 if prev is None else min(prev.end_us if prev.end_us is not None else prev.start_us,
                                                         run.start_us - 1)
        if run.start_us > start_us and w_lo < end_us:
            lo.append(w_lo)
            hi.append(run.start_us)
        prev = run
    return lo, hi
