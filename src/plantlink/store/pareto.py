"""Pareto of downtime: durations clipped to the range, summed by reason, machine or shift in SQL."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from plantlink.errors import StoreError
from plantlink.store.records import PARETO_BY, Pareto, ParetoRow, Totals
from plantlink.store.tables import downtime_events

T = downtime_events


def _clipped_us(start_us: int, end_us: int) -> sa.ColumnElement[int]:
    end = sa.func.coalesce(T.c.end_us, sa.literal(end_us, sa.BigInteger))
    s = sa.case((T.c.start_us > start_us, T.c.start_us), else_=sa.literal(start_us, sa.BigInteger))
    e = sa.case((end < end_us, end), else_=sa.literal(end_us, sa.BigInteger))
    return e - s


def pareto(conn: sa.Connection, by: str, start_us: int, end_us: int, line: str | None = None,
           site: str | None = None) -> Pareto:
    """Stops overlapping [start_us, end_us), their time inside it. Open stops count up to ``end_us``.
    Unknown-state periods and micro-stops are counted apart."""
    if by not in PARETO_BY:
        raise StoreError(f"pareto by {by!r}: choose one of {', '.join(PARETO_BY)}")
    if end_us <= start_us:
        raise StoreError(f"empty or reversed range: start_us {start_us}, end_us {end_us}")
    key = {"reason": T.c.reason, "machine": T.c.machine, "shift": T.c.shift}[by]
    keys = [T.c.reason_group.label("grp"), key.label("key")] if by == "reason" else [key.label("key")]
    conds = [T.c.start_us < end_us, sa.func.coalesce(T.c.end_us, end_us) > start_us]
    if line is not None:
        conds.append(T.c.line == line)
    if site is not None:
        conds.append(T.c.site == site)
    unknown = T.c.state == "unknown"
    q = (sa.select(unknown.label("unknown"), T.c.micro, *keys,
                   sa.func.count().label("n"), sa.func.sum(_clipped_us(start_us, end_us)).label("us"))
         .where(*conds).group_by(unknown, T.c.micro, *(k.element for k in keys)))
    return _assemble(by, start_us, end_us, list(conn.execute(q)))


def _assemble(by: str, start_us: int, end_us: int, rows: list[sa.Row]) -> Pareto:  # type: ignore[type-arg]
    stops: dict[tuple[str | None, str | None], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    unknown = [0.0, 0.0]
    for r in rows:
        n, dur = int(r.n), int(r.us or 0) / 1e6
        if r.unknown:
            unknown = [unknown[0] + n, unknown[1] + dur]
            continue
        acc = stops[(getattr(r, "grp", None), r.key)]
        i = 2 if r.micro else 0
        acc[i] += n
        acc[i + 1] += dur
    total_s = sum(a[1] for a in stops.values())
    out, cum = [], 0.0
    order = sorted(stops.items(), key=lambda kv: (-kv[1][1], -kv[1][3], str(kv[0][1]), str(kv[0][0])))
    for (grp, key), (cnt, secs, mcnt, msecs) in order:
        cum += secs
        share = secs / total_s if total_s else 0.0
        out.append(ParetoRow(key, grp, int(cnt), secs, share, cum / total_s if total_s else 0.0,
                             Totals(int(mcnt), msecs)))
    total = Totals(sum(r.count for r in out), total_s)
    micro = Totals(sum(r.micro.count for r in out), sum(r.micro.duration_s for r in out))
    return Pareto(by, start_us, end_us, out, total, micro, Totals(int(unknown[0]), float(unknown[1])))
