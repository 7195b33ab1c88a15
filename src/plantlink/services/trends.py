"""What a machine's trend marks on its time axis: alarm activations (activation to clear) and downtime events
(with their reason), over a range, for a caller who may view the machine."""

from __future__ import annotations

from dataclasses import dataclass

from plantlink.identity import Caller
from plantlink.services.alarms import Alarms, JournalEntry
from plantlink.services.downtime import DowntimeService
from plantlink.services.plant import MAX_PAGE, MAX_RANGE_US_STATES, PlantIndex, check_range

#: The journal events that start and end an alarm's activation on the trend.
_EDGES = ("activate", "clear", "return")


@dataclass(frozen=True)
class AlarmSpan:
    """One activation of an alarm: ``end_us`` None while it is still active."""

    alarm: str
    tag: str
    priority: str
    start_us: int
    end_us: int | None


@dataclass(frozen=True)
class DowntimeSpan:
    start_us: int
    end_us: int | None
    state: str
    reason: str | None


@dataclass(frozen=True)
class Marks:
    alarms: tuple[AlarmSpan, ...]
    downtime: tuple[DowntimeSpan, ...]


class TrendMarks:
    def __init__(self, index: PlantIndex, alarms: Alarms, downtime: DowntimeService):
        self.index, self.alarms, self.downtime = index, alarms, downtime

    def marks(self, who: Caller, machine: str, start_us: int, end_us: int) -> Marks:
        """Alarm activations and downtime events of ``machine`` overlapping ``[start_us, end_us)``."""
        check_range(start_us, end_us, MAX_RANGE_US_STATES)
        ref = self.index.machine(who, machine)
        events = self.downtime.events(who, machine=ref.path, start_us=start_us, end_us=end_us, limit=MAX_PAGE)
        down = tuple(sorted((DowntimeSpan(e.start_us, e.end_us, e.state, e.reason) for e in events.items),
                            key=lambda d: d.start_us))
        return Marks(self._alarm_spans(ref.path, ref.site, start_us, end_us), down)

    def _alarm_spans(self, machine: str, site: str, start_us: int, end_us: int) -> tuple[AlarmSpan, ...]:
        if not self.alarms.running:
            return ()
        svc = self.alarms.service()
        keys = [i.key for i in svc.engine.c.infos if i.machine == machine]
        if not keys:
            return ()
        svc.engine.commit()  # what happened a moment ago is in the journal too
        inside, _ = svc.store.journal(start_us=start_us, end_us=end_us, alarms=keys, sites=[site],
                                      events=list(_EDGES), limit=MAX_PAGE, newest_first=False)
        spans: list[AlarmSpan] = []
        for key in keys:  # each alarm's last edge before the range: was it active when the range began?
            before, _ = svc.store.journal(end_us=start_us, alarms=[key], sites=[site], events=list(_EDGES),
                                          limit=1)
            spans += _pair(key, before[:1] + [e for e in inside if e.alarm == key])
        return tuple(sorted(spans, key=lambda s: s.start_us))


def _pair(key: str, entries: list[JournalEntry]) -> list[AlarmSpan]:
    """Activation -> the next clear (or return), from entries oldest first; one still open ends at None."""
    out: list[AlarmSpan] = []
    open_at: JournalEntry | None = None
    for e in entries:
        if e.event == "activate" and open_at is None:
            open_at = e
        elif e.event != "activate" and open_at is not None:
            out.append(AlarmSpan(key, key.rsplit(":", 1)[0], open_at.priority, open_at.ts_us, e.ts_us))
            open_at = None
    if open_at is not None:
        out.append(AlarmSpan(key, key.rsplit(":", 1)[0], open_at.priority, open_at.ts_us, None))
    return out
