"""Shift handover notes (services.handover) on SQLite and PostgreSQL: filed under the shift running when written
(windsor's demo calendar: A-days 06-14, B-afternoons 14-22, C-nights 22-06, America/Toronto), the current and
the previous shift shown, append-only corrections, rights (operators write, viewers read, other sites neither),
clear refusals, audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from plantlink.audit import AuditLog
from plantlink.errors import AccessDenied, NotFound, RequestError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.services import Components, Services
from plantlink.services.handover import HandoverService
from plantlink.services.latest import LatestValues
from plantlink.store import Store
from plantlink.store.floor_tables import handover_notes

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
TORONTO = ZoneInfo("America/Toronto")
LINE = "windsor/stamping/press-line-1"
OPERATOR = Principal("olga", {"windsor": "operator"})
VIEWER = Principal("victor", {"windsor": "viewer"})
DETROIT = Principal("dora", {"detroit": "admin"})


def _at(hour: int, minute: int = 0, day: int = 24) -> int:
    return int(datetime(2026, 11, day, hour, minute, tzinfo=TORONTO).timestamp() * 1_000_000)


class Clock:
    def __init__(self) -> None:
        self.now = _at(10)

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def setup(store: Store) -> Iterator[tuple[HandoverService, Clock, AuditLog]]:
    plant = parse_plant(DEMO.read_text(encoding="utf-8"), str(DEMO))
    audit = AuditLog(store.engine)
    nothing = Components(*(lambda: None for _ in range(8)))
    services = Services.build(plant, {t.path: i for i, t in enumerate(plant.tags)}, LatestValues(), nothing)
    clock = Clock()
    yield HandoverService(services.plant, services.periods, lambda: store.engine, lambda: audit, clock), clock, audit


def test_notes_follow_the_shifts(setup: tuple[HandoverService, Clock, AuditLog]) -> None:
    svc, clock, _ = setup
    first = svc.write(OPERATOR, LINE, "  Die change on press 1 at 13:00  ")
    assert (first.shift, first.shift_start_us, first.author, first.text) == ("A-days", _at(6), "olga",
                                                                            "Die change on press 1 at 13:00")
    clock.now = _at(10, 30)
    board = svc.board(VIEWER, LINE)
    assert (board.current.name, board.current.start_us) == ("A-days", _at(6))
    assert (board.previous.name, board.previous.start_us) == ("C-nights", _at(22, day=23))
    assert [n.id for n in board.current_notes] == [first.id] and board.previous_notes == []
    clock.now = _at(15)  # B-afternoons: the A-days note is now the previous shift's
    board = svc.board(VIEWER, LINE)
    assert board.current.name == "B-afternoons" and board.current_notes == []
    assert [n.text for n in board.previous_notes] == ["Die change on press 1 at 13:00"]
    assert board.latest is not None and board.latest.id == first.id
    clock.now = _at(23)  # C-nights: two shifts later, the note is no longer shown
    board = svc.board(VIEWER, LINE)
    assert board.current_notes == [] and board.previous_notes == []


def test_corrections_are_new_notes(setup: tuple[HandoverService, Clock, AuditLog], store: Store) -> None:
    svc, clock, audit = setup
    first = svc.write(OPERATOR, LINE, "Press 1 lube low")
    clock.now += 60_000_000
    second = svc.write(OPERATOR, LINE, "Press 1 lube refilled, watch it", replaces=first.id)
    board = svc.board(OPERATOR, LINE)
    assert [(n.id, n.replaces) for n in board.current_notes] == [(second.id, first.id), (first.id, None)]
    with store.engine.connect() as c:
        texts = [r.text for r in c.execute(sa.select(handover_notes).order_by(handover_notes.c.id))]
    assert texts == ["Press 1 lube low", "Press 1 lube refilled, watch it"]  # the first is unchanged
    records = list(audit.query(kind="handover.note"))
    assert [(r.actor, r.site, r.target, r.details["note_id"], r.details["replaces"]) for r in records] == [
        ("olga", "windsor", LINE, first.id, None), ("olga", "windsor", LINE, second.id, first.id)]


def test_rights_and_refusals(setup: tuple[HandoverService, Clock, AuditLog]) -> None:
    svc, _, audit = setup
    with pytest.raises(AccessDenied):
        svc.write(VIEWER, LINE, "viewers read only")
    with pytest.raises(AccessDenied):
        svc.board(DETROIT, LINE)
    with pytest.raises(NotFound):
        svc.board(OPERATOR, "windsor/stamping/no-such-line")
    with pytest.raises(RequestError) as empty:
        svc.write(OPERATOR, LINE, "   ")
    assert empty.value.field == "text"
    with pytest.raises(RequestError) as long:
        svc.write(OPERATOR, LINE, "x" * 4001)
    assert long.value.field == "text" and "4000" in str(long.value)
    with pytest.raises(RequestError) as unknown:
        svc.write(OPERATOR, LINE, "fix", replaces=999)
    assert unknown.value.field == "replaces"
    assert list(audit.query(kind="handover.note")) == []
