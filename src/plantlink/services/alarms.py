"""Alarms as the HMI and the API use them: annunciated alarms scoped to the caller, operator actions (rights
and audit trail in ``AlarmService``), the journal, EEMUA 191 performance and failed notifications."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from plantlink.engines.alarms.engine import AlarmEngine, AlarmView
from plantlink.engines.alarms.isa import ANNUNCIATED, STATES, UNACKNOWLEDGED
from plantlink.engines.alarms.performance import Performance
from plantlink.engines.alarms.service import AlarmService
from plantlink.errors import AlarmActionError
from plantlink.identity import Caller, Role
from plantlink.model.alarms import PRIORITIES, AlarmDef
from plantlink.samples import now_us
from plantlink.store.alarm_repo import AlarmStore, Delivery, JournalEntry

__all__ = ["ANNUNCIATED", "PRIORITIES", "STATES", "UNACKNOWLEDGED", "AlarmActionError", "AlarmDef", "AlarmView",
           "Alarms", "Delivery", "JournalEntry", "Performance", "alarm_counts", "worst_by_machine"]

_CACHE_US = 200_000
T = TypeVar("T")


def alarm_counts(alarms: Sequence[AlarmView]) -> dict[str, int]:
    """Count per priority (every priority present, critical first)."""
    out = dict.fromkeys(PRIORITIES, 0)
    for a in alarms:
        out[a.priority] = out.get(a.priority, 0) + 1
    return out


def worst_by_machine(alarms: Sequence[AlarmView]) -> dict[str, str]:
    """Machine path -> the highest priority among its alarms."""
    out: dict[str, str] = {}
    for a in alarms:
        have = out.get(a.machine)
        if have is None or PRIORITIES.index(a.priority) < PRIORITIES.index(have):
            out[a.machine] = a.priority
    return out


class Alarms:
    """Over the runtime's ``AlarmService`` (None: the alarm system is not running)."""

    def __init__(self, site_names: Sequence[str], service: Callable[[], AlarmService | None],
                 records: Callable[[], AlarmStore | None] = lambda: None,
                 mirror: Callable[[], AlarmEngine | None] = lambda: None):
        """``records``: the alarm journal and deliveries without a running alarm system (``plantlink serve``:
        the journal the alarm engine of ``plantlink run`` writes to the shared store); ``mirror``: the alarms
        now without it (an engine restored from the states that alarm engine saved: read only)."""
        self.site_names = list(site_names)
        self._service = service
        self._records = records
        self._mirror = mirror
        self._lock = threading.Lock()
        self._annunciated: tuple[int, list[AlarmView]] | None = None
        self._defs: dict[str, AlarmDef] | None = None

    @property
    def running(self) -> bool:
        return self._service() is not None

    @property
    def readable(self) -> bool:
        """The journal can be read: the alarm system runs, or its records are at hand (``plantlink serve``)."""
        return self.running or self._records() is not None or self._mirror() is not None

    def _reader(self) -> AlarmEngine | None:
        """The engine whose alarms are read: the running one, else the mirror (``plantlink serve``)."""
        svc = self._service()
        return svc.engine if svc is not None else self._mirror()

    def _reading(self) -> AlarmEngine:
        found = self._reader()
        if found is None:
            raise AlarmActionError("the alarm system is not running", 503)
        return found

    def service(self) -> AlarmService:
        svc = self._service()
        if svc is None:
            raise AlarmActionError("the alarm system is not running", 503)
        return svc

    def records(self) -> AlarmStore:
        """The journal and deliveries: the running alarm system's store, else ``records`` (503 without both)."""
        svc = self._service()
        found = svc.store if svc is not None else self._records()
        if found is None:
            raise AlarmActionError("the alarm system is not running", 503)
        return found

    def sites(self, who: Caller, role: Role = "viewer") -> list[str]:
        """The sites of the plant where ``who`` has at least ``role``."""
        return [s for s in self.site_names if who.can(s, role)]

    # -- reading ---------------------------------------------------------------------------------------
    def _annunciated_now(self, engine: AlarmEngine) -> list[AlarmView]:
        """The engine's annunciated alarms, shared by every caller for 0.2 s (banners, tiles, summaries)."""
        t = now_us()
        with self._lock:
            hit = self._annunciated
        if hit is not None and t - hit[0] < _CACHE_US:
            return hit[1]
        found = engine.alarms()
        with self._lock:
            self._annunciated = (t, found)
        return found

    def drop_cache(self) -> None:
        """Forget the shared list (after an operator action, so that a page shows its effect at once)."""
        with self._lock:
            self._annunciated = None

    def active(self, who: Caller, *, sites: Sequence[str] | None = None, priorities: Sequence[str] | None = None,
               states: Sequence[str] | None = None) -> list[AlarmView]:
        """Annunciated alarms (or those in ``states``) at the sites ``who`` may see, sorted by priority
        (critical first), then newest first."""
        engine = self._reader()
        if engine is None:
            return []
        allowed = set(self.sites(who))
        if sites:
            allowed &= set(sites)
        found = self._annunciated_now(engine) if not states else engine.alarms(list(states))
        rows = [a for a in found if a.site in allowed and (not priorities or a.priority in priorities)]
        rows.sort(key=lambda a: (PRIORITIES.index(a.priority), -a.since_us))
        return rows

    def definition(self, key: str) -> AlarmDef | None:
        """The model's definition of an alarm (its limit, setpoint, type); None: unknown or not running."""
        if self._defs is None:
            engine = self._reader()
            if engine is None:
                return None
            self._defs = {i.key: i.defn for i in engine.c.infos}
        return self._defs.get(key)

    def journal(self, who: Caller, sites: Sequence[str] | None = None, limit: int = 100) -> list[JournalEntry]:
        """The latest transitions (newest first) at the sites ``who`` may see."""
        svc = self._service()
        if svc is None and self._records() is None:
            return []
        allowed = [s for s in self.sites(who) if not sites or s in sites]
        if svc is not None:
            svc.engine.commit()  # what happened a moment ago is in the journal too
        return self.records().journal(sites=allowed, limit=limit)[0]

    def performance(self, who: Caller, window_s: int) -> Performance | None:
        """EEMUA 191 figures over the last ``window_s`` seconds for the sites ``who`` may view."""
        svc = self._service()
        if svc is None:
            return None
        end = now_us()
        return svc.performance(end - window_s * 1_000_000, end, self.sites(who))

    def failed_deliveries(self, who: Caller, limit: int = 50) -> list[Delivery]:
        """Notifications that failed after their retries, newest first, at the sites ``who`` may view."""
        if self._service() is None and self._records() is None:
            return []
        return self.records().deliveries(["failed"], self.sites(who), limit=limit)[0]

    # -- what the REST routes ask (rights checked by the routes and by AlarmService) -----------------------
    def known_sites(self) -> list[str]:
        """The sites that have alarms configured (without a running alarm system: every site, when the journal
        can be read)."""
        engine = self._reader()
        if engine is None:
            self.records()
            return sorted(self.site_names)
        return sorted({i.site for i in engine.c.infos})

    def in_states(self, states: Sequence[str] | None) -> list[AlarmView]:
        """Every alarm in ``states`` (default: the annunciated ones), unscoped."""
        return self._reading().alarms(list(states) if states else None)

    def journal_page(self, *, sites: Sequence[str], start_us: int | None = None, end_us: int | None = None,
                     alarms: Sequence[str] | None = None, events: Sequence[str] | None = None, limit: int = 100,
                     offset: int = 0) -> tuple[list[JournalEntry], int]:
        return self.records().journal(start_us=start_us, end_us=end_us, alarms=alarms, sites=sites,
                                            events=events, limit=limit, offset=offset)

    def deliveries(self, status: Sequence[str], sites: Sequence[str], limit: int = 100, offset: int = 0
                   ) -> tuple[list[Delivery], int]:
        return self.records().deliveries(list(status), list(sites), limit, offset)

    def performance_of(self, start_us: int, end_us: int, sites: Sequence[str]) -> Performance:
        return self.service().performance(start_us, end_us, sites)

    # -- operator actions (rights and audit trail in AlarmService): the engine changes in the event loop, where
    # it runs; the writes (the journal, the audit records) are waited for in a worker thread, before the answer
    async def _act(self, action: Callable[[AlarmService], T]) -> T:
        svc = self.service()
        later: list[Callable[[], object]] = []
        try:
            with svc.defer(later):
                return action(svc)
        finally:
            self.drop_cache()  # a page shows the action's effect at once
            if later:
                await asyncio.to_thread(_run_all, later)

    async def acknowledge(self, who: Caller, keys: Sequence[str], comment: str | None) -> list[str]:
        """Acknowledge alarms (all or none); operator rights at each alarm's site. Returns the new states."""
        return await self._act(lambda s: s.acknowledge(list(keys), who, comment))

    async def shelve(self, who: Caller, key: str, minutes: float, reason: str) -> int:
        """Shelve an alarm for ``minutes`` with a reason (operator rights); returns the end time (us)."""
        until = now_us() + int(max(0.0, min(minutes, 1e7)) * 60 * 1_000_000)  # the service refuses out of range
        await self.shelve_until(who, key, until, reason.strip())
        return until

    async def shelve_until(self, who: Caller, key: str, until_us: int, reason: str) -> None:
        await self._act(lambda s: s.shelve(key, until_us, reason, who))

    async def unshelve(self, who: Caller, key: str, comment: str | None = None) -> str:
        return await self._act(lambda s: s.unshelve(key, who, comment))

    async def out_of_service(self, who: Caller, key: str, out: bool, comment: str | None) -> str:
        return await self._act(lambda s: s.out_of_service(key, out, who, comment))

    def record_refusal(self, kind: str, who: Caller, message: str, field: str | None) -> None:
        """Record a request refused before it reached an action (it did not validate)."""
        self.service().record_refusal(kind, who, message, field)


def _run_all(writes: Sequence[Callable[[], object]]) -> None:
    for write in writes:
        write()
