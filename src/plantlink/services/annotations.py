"""Notes on a machine's trend (a time or a span, optionally about one tag) that people add and everyone who may
view the machine sees. Operators and above at the site add; the author, or an admin of the site, deletes. Every
add and delete is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from plantlink.audit.sink import AuditSink
from plantlink.errors import AccessDenied, InvalidValue, NotFound, Unavailable
from plantlink.identity import Caller
from plantlink.samples import now_us
from plantlink.services.plant import MAX_RANGE_US_STATES, PlantIndex, check_range
from plantlink.store.trends import Annotation, TrendView

__all__ = ["Annotation", "Annotations", "TrendRecords"]

MAX_TEXT = 500
DAY_US = 86_400 * 1_000_000
#: How far back a note may be placed, and ahead of now (clocks differ a little).
MAX_AGE_US = 400 * DAY_US
MAX_AHEAD_US = DAY_US
MAX_SPAN_US = 31 * DAY_US
MAX_LIST = 1000


class TrendRecords(Protocol):
    """What the trend services ask of the relational store."""

    def add_annotation(self, a: Annotation) -> Annotation: ...

    def annotation(self, annotation_id: int) -> Annotation: ...

    def annotations(self, machine: str, start_us: int, end_us: int, limit: int = ...) -> list[Annotation]: ...

    def delete_annotation(self, annotation_id: int) -> None: ...

    def add_view(self, v: TrendView) -> TrendView: ...

    def view(self, view_id: int) -> TrendView: ...

    def views(self, owner: str, shared_sites: list[str], machine: str | None = ...) -> list[TrendView]: ...

    def delete_view(self, view_id: int) -> None: ...


class Annotations:
    def __init__(self, index: PlantIndex, records: Callable[[], TrendRecords | None],
                 audit: Callable[[], AuditSink | None]):
        self.index, self._records, self._audit = index, records, audit

    def store(self) -> TrendRecords:
        r = self._records()
        if r is None:
            raise Unavailable("the relational store is not open")
        return r

    def record(self, kind: str, who: Caller, site: str, target: str, details: dict[str, object]) -> None:
        sink = self._audit()
        if sink is not None:
            sink.record(kind, who.name, site, target, details)

    def list(self, who: Caller, machine: str, start_us: int, end_us: int) -> list[Annotation]:
        """The machine's notes overlapping ``[start_us, end_us)``, oldest first (viewers and above)."""
        check_range(start_us, end_us, MAX_RANGE_US_STATES)
        ref = self.index.machine(who, machine)
        return self.store().annotations(ref.path, start_us, end_us, MAX_LIST)

    def add(self, who: Caller, machine: str, text: str, start_us: int, end_us: int | None = None,
            tag: str | None = None) -> Annotation:
        """A note by ``who`` (operator or above at the machine's site) at ``start_us`` or over a span."""
        ref = self.index.machine(who, machine, role="operator")
        body = (text or "").strip()
        if not body:
            raise InvalidValue("text is empty: write what happened", "text")
        if len(body) > MAX_TEXT:
            raise InvalidValue(f"text is {len(body)} characters long, at most {MAX_TEXT}", "text")
        now = now_us()
        if not now - MAX_AGE_US <= start_us <= now + MAX_AHEAD_US:
            raise InvalidValue("start must be within the last 400 days and not more than a day ahead", "start")
        if end_us is not None and not start_us <= end_us <= start_us + MAX_SPAN_US:
            raise InvalidValue("end must be at or after start, and the span at most 31 days", "end")
        if tag is not None:
            path = tag.strip("/")
            if "/" not in path:
                path = f"{ref.path}/{path}"
            if self.index.tags.get(path) is None or not path.startswith(ref.path + "/"):
                raise NotFound(f"machine {ref.path!r} has no tag {tag!r}", field="tag")
            tag = path
        made = self.store().add_annotation(Annotation(0, ref.site, ref.path, tag, start_us, end_us, body, who.name,
                                                      now))
        self.record("trend.annotation.add", who, ref.site, ref.path,
                    {"id": made.id, "start_us": start_us, "end_us": end_us, "tag": tag, "text": body})
        return made

    def get(self, who: Caller, annotation_id: int) -> Annotation:
        """One note; another site's is not found (ids do not leak what exists elsewhere)."""
        try:
            a = self.store().annotation(annotation_id)
        except NotFound:
            raise NotFound(f"no annotation with id {annotation_id}", field="annotation_id") from None
        if not who.can(a.site, "viewer"):
            raise NotFound(f"no annotation with id {annotation_id}", field="annotation_id")
        return a

    def delete(self, who: Caller, annotation_id: int) -> Annotation:
        """Delete a note: its author (still an operator at the site) or an admin of the site."""
        a = self.get(who, annotation_id)
        own = a.author == who.name and who.can(a.site, "operator")
        if not own and not who.can(a.site, "admin"):
            raise AccessDenied("only the author of a note, or an admin of its site, may delete it", a.site)
        self.store().delete_annotation(a.id)
        self.record("trend.annotation.delete", who, a.site, a.machine, {"id": a.id, "author": a.author,
                                                                         "text": a.text})
        return a
