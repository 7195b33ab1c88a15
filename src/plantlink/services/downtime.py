"""Downtime: events (scoped pages), one event, reasons (tree and assignment) and the Pareto of lost time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from plantlink.errors import QueryError, Unavailable
from plantlink.identity import Caller, Role
from plantlink.services.deps import StateRecords
from plantlink.services.plant import (
    DEFAULT_PAGE,
    MAX_PAGE,
    MAX_RANGE_US_STATES,
    NotFound,
    PlantIndex,
    check_page,
    check_range,
)
from plantlink.store import PARETO_BY
from plantlink.store.records import DowntimeEvent, Page, Pareto

__all__ = ["PARETO_BY", "DowntimeEvent", "DowntimeService", "Page", "Pareto"]

EVENT_FILTERS = ("machine", "line", "state", "micro", "shift", "has_reason")


class ReasonAssigner(Protocol):
    """What the downtime service asks of the downtime engine."""

    def assign_reason(self, event_id: int, reason: str | None, *, by: str, group: str | None = None,
                      comment: str | None = None, at_us: int | None = None) -> DowntimeEvent: ...


class DowntimeService:
    def __init__(self, index: PlantIndex, records: Callable[[], StateRecords | None],
                 engine: Callable[[], ReasonAssigner | None]):
        self.index, self._records, self._engine = index, records, engine

    def _store(self) -> StateRecords:
        r = self._records()
        if r is None:
            raise Unavailable("the relational store is not open")
        return r

    def events(self, who: Caller, *, site: str | None = None, start_us: int | None = None,
               end_us: int | None = None, limit: int = DEFAULT_PAGE, offset: int = 0, **filters: Any) -> Page:
        """A page of downtime events, newest first. Filters: machine, line, state, micro, shift, has_reason.
        Without ``site``/``line``/``machine`` the caller must be able to view every site, or exactly one."""
        check_page(limit, offset, MAX_PAGE)
        if start_us is not None and end_us is not None:
            check_range(start_us, end_us)
        unknown = set(filters) - set(EVENT_FILTERS)
        if unknown:
            raise QueryError(f"unknown filter(s) {sorted(unknown)}", field=sorted(unknown)[0])
        idx = self.index
        query = {k: v for k, v in filters.items() if v is not None}
        if "machine" in query:
            query["machine"] = idx.machine(who, query["machine"]).path
        if "line" in query:
            query["line"] = idx.line(who, query["line"]).path
        if site is not None:
            idx.site(who, site)
            query["site"] = site
        elif "machine" not in query and "line" not in query:
            visible = idx.visible_sites(who)
            if len(visible) == 1:
                query["site"] = visible[0]
            elif len(visible) < len(idx.sites):
                raise QueryError("name a site (you may view several, not all)", field="site")
        return self._store().downtime(start_us=start_us, end_us=end_us, limit=limit, offset=offset, **query)

    def event(self, who: Caller, event_id: int, role: Role = "viewer") -> DowntimeEvent:
        try:
            ev = self._store().event(event_id)
        except NotFound:  # the store's, answered as the API's (the same class)
            raise NotFound(f"no downtime event with id {event_id}", field="event_id") from None
        if not who.can(ev.site, "viewer"):
            raise NotFound(f"no downtime event with id {event_id}", field="event_id")
        self.index.require(who, ev.site, role)
        return ev

    def assign_reason(self, who: Caller, event_id: int, reason: str | None, *, group: str | None = None,
                      comment: str | None = None) -> DowntimeEvent:
        """Give (or with None, clear) a downtime event's reason; operators and above, checked against the
        line's reason tree (``ReasonError`` lists the valid ones)."""
        self.event(who, event_id, role="operator")
        engine = self._engine()
        if engine is None:
            raise Unavailable("the downtime engine is not running")
        return engine.assign_reason(event_id, reason, by=who.name, group=group, comment=comment)

    def reasons(self, who: Caller, line: str) -> dict[str, list[str]]:
        """The reason tree of a line: group -> reasons."""
        ref = self.index.line(who, line)
        return {g.name: list(g.reasons) for g in ref.model.downtime.reasons}

    def pareto(self, who: Caller, by: str, start_us: int, end_us: int, *, line: str | None = None,
               site: str | None = None) -> Pareto:
        """Lost time by reason, machine or shift in the range, on one line or site."""
        if by not in PARETO_BY:
            raise QueryError(f"by must be one of {list(PARETO_BY)}, got {by!r}", field="by")
        check_range(start_us, end_us, MAX_RANGE_US_STATES)
        if line is not None:
            line = self.index.line(who, line).path
        elif site is not None:
            self.index.site(who, site)
        else:
            raise QueryError("name a line or a site", field="line")
        return self._store().pareto(by, start_us, end_us, line=line, site=site)
