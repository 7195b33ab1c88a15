"""Shift handover notes per line: what one crew tells the next.

Operators and above at the line's site write; viewers read. Notes are append-only: an edit is a new note that
names the one it replaces (``replaces``); nothing is updated or deleted. Each note is filed under the shift
running when it was written (the site's calendar: ``PlannedTime.shift_at``; outside shifts, or a calendar
without shifts, the local day, named "Day"). ``board`` gives the current shift's notes and the previous shift's,
newest first. Every note written is audited (``handover.note``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from plantlink.audit import AuditLog
from plantlink.errors import RequestError, Unavailable
from plantlink.identity import Caller, Role
from plantlink.samples import now_us
from plantlink.services.periods import Periods
from plantlink.services.plant import PlantIndex
from plantlink.store.floor_tables import handover_notes

MAX_TEXT = 4000
#: the shift name of notes written outside shifts (or at a site whose calendar has none)
NO_SHIFT = "Day"


@dataclass(frozen=True)
class Note:
    id: int
    line: str
    site: str
    shift: str
    shift_start_us: int
    author: str
    ts_us: int
    text: str
    replaces: int | None


@dataclass(frozen=True)
class Shift:
    name: str
    start_us: int


@dataclass(frozen=True)
class Board:
    """A line's handover: the current shift's notes and the previous shift's, newest first."""

    line: str
    timezone: str
    current: Shift
    previous: Shift
    current_notes: list[Note]
    previous_notes: list[Note]

    @property
    def latest(self) -> Note | None:
        notes = self.current_notes or self.previous_notes
        return notes[0] if notes else None

    def as_json(self) -> dict[str, Any]:
        def shift(s: Shift, notes: list[Note]) -> dict[str, Any]:
            return {"name": s.name, "start_us": s.start_us, "notes": [asdict(n) for n in notes]}

        return {"line": self.line, "timezone": self.timezone,
                "current": shift(self.current, self.current_notes),
                "previous": shift(self.previous, self.previous_notes)}


def _note(row: Any) -> Note:
    return Note(int(row.id), row.line, row.site, row.shift or NO_SHIFT, int(row.shift_start_us), row.author,
                int(row.ts_us), row.text, None if row.replaces is None else int(row.replaces))


class HandoverService:
    def __init__(self, index: PlantIndex, periods: Periods, engine: Callable[[], sa.Engine | None],
                 audit: Callable[[], AuditLog | None], clock: Callable[[], int] = now_us):
        self.index, self.periods, self._engine, self._audit, self.clock = index, periods, engine, audit, clock

    def _db(self) -> sa.Engine:
        engine = self._engine()
        if engine is None:
            raise Unavailable("the relational store is not open")
        return engine

    def _site(self, who: Caller, line: str, role: Role) -> str:
        """The line's site; NotFound for an unknown line, Forbidden without ``role`` at its site."""
        return self.index.line(who, line, role).site

    def shift_at(self, site: str, ts_us: int) -> Shift:
        span = self.index.planned[site].shift_at(ts_us)
        if span is not None:
            return Shift(span.name, int(span.start_us))
        return Shift(NO_SHIFT, self.periods.midnight(site, ts_us))

    def board(self, who: Caller, line: str) -> Board:
        line = line.strip("/")
        site = self._site(who, line, "viewer")
        current = self.shift_at(site, self.clock())
        previous = self.shift_at(site, current.start_us - 1)
        t = handover_notes
        q = sa.select(t).where(t.c.line == line, t.c.shift_start_us.in_([current.start_us, previous.start_us]))
        with self._db().connect() as c:
            notes = [_note(r) for r in c.execute(q.order_by(t.c.ts_us.desc(), t.c.id.desc()))]
        return Board(line, self.periods.zones[site], current, previous,
                     [n for n in notes if n.shift_start_us == current.start_us],
                     [n for n in notes if n.shift_start_us == previous.start_us])

    def write(self, who: Caller, line: str, text: str, replaces: int | None = None) -> Note:
        """Append a note to the current shift (``replaces``: the id of an earlier note of the line it corrects)."""
        line = line.strip("/")
        site = self._site(who, line, "operator")
        body = text.strip()
        if not body:
            raise RequestError("a handover note needs some text", field="text")
        if len(body) > MAX_TEXT:
            raise RequestError(f"a handover note has at most {MAX_TEXT} characters, got {len(body)}", field="text")
        t, now = handover_notes, self.clock()
        shift = self.shift_at(site, now)
        with self._db().begin() as c:
            if replaces is not None and c.execute(sa.select(t.c.id).where(
                    t.c.id == replaces, t.c.line == line)).first() is None:
                raise RequestError(f"no handover note {replaces} on line {line}", field="replaces")
            res = c.execute(t.insert().values(line=line, site=site, shift=shift.name, shift_start_us=shift.start_us,
                                              author=who.name, ts_us=now, text=body, replaces=replaces))
            note_id = int(res.inserted_primary_key[0])  # type: ignore[index]
        log = self._audit()
        if log is not None:
            log.record("handover.note", who.name, site, line,
                       {"note_id": note_id, "shift": shift.name, "replaces": replaces, "chars": len(body)})
        return Note(note_id, line, site, shift.name, shift.start_us, who.name, now, body, replaces)
