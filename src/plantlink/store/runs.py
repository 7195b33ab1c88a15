"""Runs of plantlink: when it observed the plant. Functions on a SQLAlchemy connection.

A run begins when the state engine starts and ends at its clean stop (``end_reason`` "stop"). A run that is
still open when the next one begins did not stop cleanly: it is closed at the last known time ("crash").
Between two runs plantlink saw nothing: a production counter must not count across that (the *cuts* of
``engines.counters``).
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
    ``start_us``. Returns the new run's id and the runs closed.

    The first run on record, when a last known time exists (plantlink ran before it recorded runs: an
    upgrade), is preceded by a row for that earlier run, ended at that time as a crash (how it ended is not
    known), so that its data is cut off from the new run's."""
    left = [_row(r) for r in conn.execute(T.select().where(T.c.end_us.is_(None)).order_by(T.c.start_us))]
    for run in left:
        end = max(run.start_us, min(last_known_us if last_known_us is not None else run.start_us, start_us))
        conn.execute(T.update().where(T.c.id == run.id).values(end_us=end, end_reason=END_CRASH))
    if last_known_us is not None and conn.execute(sa.select(sa.func.count()).select_from(T)).scalar_one() == 0:
        at = min(last_known_us, start_us - 1)
        conn.execute(T.insert().values(start_us=at, end_us=at, end_reason=END_CRASH))
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


def cuts(conn: sa.Connection, start_us: int, end_us: int) -> list[int]:
    """The instants in ``[start_us, end_us)`` that counter samples on both sides of are not continuous with.

    * after a clean stop: the stop. A sample stamped later was read by the next run (an OPC UA value keeps the
      time it changed, which may be before the next start), so it belongs to that run;
    * after a crash: its last known time and the instant before the next start. Samples stamped between were
      read either by the crashed run after its last heartbeat or by the next one: they are cut off both ways.

    Before the first run on record there is no cut: nothing was read before it (see ``begin`` for upgrades).
    """
    q = T.select().order_by(T.c.start_us, T.c.id)  # one row per start of plantlink: a small table
    out: set[int] = set()
    prev: Run | None = None
    for run in (_row(r) for r in conn.execute(q)):
        if prev is not None and prev.end_reason == END_STOP and prev.end_us is not None:
            out.add(min(prev.end_us, run.start_us - 1))
        elif prev is not None:
            out.update((min(prev.end_us if prev.end_us is not None else prev.start_us, run.start_us - 1),
                        run.start_us - 1))
        prev = run
    return sorted(c for c in out if start_us <= c < end_us)
