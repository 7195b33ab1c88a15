"""Trend annotations and saved trend views: functions on a SQLAlchemy connection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from plantlink.errors import NotFound
from plantlink.store.trend_tables import trend_annotations as A
from plantlink.store.trend_tables import trend_views as V


@dataclass(frozen=True)
class Annotation:
    id: int
    site: str
    machine: str
    tag: str | None
    start_us: int
    end_us: int | None
    text: str
    author: str
    created_us: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrendView:
    """A saved trend: ``span_s`` (relative: that long back from now) or ``start_us``..``end_us`` (absolute)."""

    id: int
    owner: str
    site: str
    machine: str
    name: str
    pens: tuple[str, ...]
    span_s: int | None
    start_us: int | None
    end_us: int | None
    shared: bool
    created_us: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pens"] = list(self.pens)
        return d


def _annotation(r: Any) -> Annotation:
    return Annotation(int(r.id), r.site, r.machine, r.tag, int(r.start_us), None if r.end_us is None else int(r.end_us),
                      r.text, r.author, int(r.created_us))


def _view(r: Any) -> TrendView:
    return TrendView(int(r.id), r.owner, r.site, r.machine, r.name, tuple(json.loads(r.pens)),
                     None if r.span_s is None else int(r.span_s), None if r.start_us is None else int(r.start_us),
                     None if r.end_us is None else int(r.end_us), bool(r.shared), int(r.created_us))


def add_annotation(conn: sa.Connection, a: Annotation) -> Annotation:
    values = a.to_dict()
    del values["id"]
    res = conn.execute(A.insert().values(**values))
    return get_annotation(conn, int(res.inserted_primary_key[0]))  # type: ignore[index]


def get_annotation(conn: sa.Connection, annotation_id: int) -> Annotation:
    row = conn.execute(A.select().where(A.c.id == annotation_id)).first()
    if row is None:
        raise NotFound(f"no annotation with id {annotation_id}", field="annotation_id")
    return _annotation(row)


def list_annotations(conn: sa.Connection, machine: str, start_us: int, end_us: int, limit: int) -> list[Annotation]:
    """The machine's notes that overlap ``[start_us, end_us)``, oldest first."""
    q = A.select().where(A.c.machine == machine, A.c.start_us < end_us,
                         sa.func.coalesce(A.c.end_us, A.c.start_us) >= start_us)
    return [_annotation(r) for r in conn.execute(q.order_by(A.c.start_us, A.c.id).limit(limit))]


def delete_annotation(conn: sa.Connection, annotation_id: int) -> None:
    conn.execute(A.delete().where(A.c.id == annotation_id))


def add_view(conn: sa.Connection, v: TrendView) -> TrendView:
    values = v.to_dict()
    del values["id"]
    values["pens"] = json.dumps(list(v.pens))
    res = conn.execute(V.insert().values(**values))
    return get_view(conn, int(res.inserted_primary_key[0]))  # type: ignore[index]


def get_view(conn: sa.Connection, view_id: int) -> TrendView:
    row = conn.execute(V.select().where(V.c.id == view_id)).first()
    if row is None:
        raise NotFound(f"no saved trend view with id {view_id}", field="view_id")
    return _view(row)


def views(conn: sa.Connection, owner: str, shared_sites: Sequence[str], machine: str | None) -> list[TrendView]:
    """The owner's views and the views shared at ``shared_sites``, by name."""
    q = V.select().where(sa.or_(V.c.owner == owner, sa.and_(V.c.shared.is_(True), V.c.site.in_(list(shared_sites)))))
    if machine is not None:
        q = q.where(V.c.machine == machine)
    return [_view(r) for r in conn.execute(q.order_by(V.c.name, V.c.id))]


def delete_view(conn: sa.Connection, view_id: int) -> None:
    conn.execute(V.delete().where(V.c.id == view_id))
