"""Trend annotations and saved trend views through their services, over the store on SQLite and PostgreSQL:
who may add, see and delete, what is validated, and that every change is audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantlink.audit.sink import MemoryAudit
from plantlink.errors import AccessDenied, InvalidValue, NotFound, QueryError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.samples import now_us
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues
from plantlink.store import Store

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
OVEN = "windsor/body-paint/body-line-1/oven1"
PRESS = "windsor/stamping/press-line-1/press1"
DETROIT_M = "detroit"  # a site prefix: any detroit machine path starts with it
MIN_US = 60 * 1_000_000

OPERATOR = Principal("olga", {"windsor": "operator"})
OTHER_OP = Principal("omar", {"windsor": "operator"})
VIEWER = Principal("vic", {"windsor": "viewer"})
DETROIT = Principal("dora", {"detroit": "operator"})
ADMIN = Principal("ada", {"windsor": "admin"})


@pytest.fixture
def wired(store: Store) -> tuple[Services, MemoryAudit]:
    plant = parse_plant(DEMO.read_text(encoding="utf-8"), str(DEMO))
    audit = MemoryAudit()
    nothing = [lambda: None for _ in range(6)]
    parts = Components(*nothing, lambda: None, lambda: audit, trend_store=lambda: store)  # type: ignore[arg-type,return-value]
    return Services.build(plant, {t.path: i for i, t in enumerate(plant.tags)}, LatestValues(), parts), audit


def test_a_note_is_seen_by_every_viewer_of_the_machine_and_audited(wired: tuple[Services, MemoryAudit]) -> None:
    svc, audit = wired
    t = now_us() - 10 * MIN_US
    a = svc.annotations.add(OPERATOR, OVEN, "  burner relit by maintenance ", t, t + 5 * MIN_US, "zone1_temperature")
    assert (a.text, a.author, a.site, a.tag) == ("burner relit by maintenance", "olga", "windsor",
                                                 f"{OVEN}/zone1_temperature")
    point = svc.annotations.add(OTHER_OP, OVEN, "door opened", t + 20 * MIN_US)
    # both overlap the range; one outside is not listed
    seen = svc.annotations.list(VIEWER, OVEN, t + MIN_US, t + 30 * MIN_US)
    assert [x.id for x in seen] == [a.id, point.id]
    assert svc.annotations.list(VIEWER, OVEN, t + 6 * MIN_US, t + 10 * MIN_US) == []
    assert svc.annotations.list(VIEWER, PRESS, t - MIN_US, t + 30 * MIN_US) == []  # another machine's
    assert audit.kinds() == ["trend.annotation.add", "trend.annotation.add"]
    assert audit.entries[0].actor == "olga" and audit.entries[0].target == OVEN
    assert audit.entries[0].details["text"] == "burner relit by maintenance"


def test_who_may_add_and_delete_a_note(wired: tuple[Services, MemoryAudit]) -> None:
    svc, audit = wired
    t = now_us() - MIN_US
    with pytest.raises(AccessDenied):
        svc.annotations.add(VIEWER, OVEN, "a viewer's note", t)
    with pytest.raises(AccessDenied):
        svc.annotations.add(DETROIT, OVEN, "another site's note", t)
    a = svc.annotations.add(OPERATOR, OVEN, "mine", t)
    with pytest.raises(AccessDenied, match="author"):
        svc.annotations.delete(OTHER_OP, a.id)
    with pytest.raises(NotFound):  # another site's id is not found
        svc.annotations.delete(DETROIT, a.id)
    with pytest.raises(NotFound):
        svc.annotations.list(DETROIT, OVEN + "x", t - MIN_US, t + MIN_US)
    assert svc.annotations.delete(OPERATOR, a.id).id == a.id
    b = svc.annotations.add(OTHER_OP, OVEN, "his", t)
    svc.annotations.delete(ADMIN, b.id)  # an admin of the site may remove any note
    assert svc.annotations.list(VIEWER, OVEN, t - MIN_US, t + MIN_US) == []
    with pytest.raises(NotFound):
        svc.annotations.delete(ADMIN, b.id)
    assert audit.kinds() == ["trend.annotation.add", "trend.annotation.delete", "trend.annotation.add",
                             "trend.annotation.delete"]
    assert audit.entries[-1].actor == "ada" and audit.entries[-1].details["author"] == "omar"


@pytest.mark.parametrize(("text", "start_off", "end_off", "tag", "field"), [
    ("", 0, None, None, "text"),
    ("   ", 0, None, None, "text"),
    ("x" * 501, 0, None, None, "text"),
    ("ok", -401 * 86400 * 1_000_000, None, None, "start"),
    ("ok", 2 * 86400 * 1_000_000, None, None, "start"),
    ("ok", 0, -1, None, "end"),
    ("ok", 0, 32 * 86400 * 1_000_000, None, "end"),
    ("ok", 0, None, "no_such_tag", "tag"),
    ("ok", 0, None, f"{PRESS}/tonnage", "tag"),  # a tag of another machine
])
def test_bad_notes_are_refused_naming_the_field(wired: tuple[Services, MemoryAudit], text: str, start_off: int,
                                                end_off: int | None, tag: str | None, field: str) -> None:
    svc, audit = wired
    t = now_us()
    with pytest.raises((InvalidValue, NotFound)) as err:
        svc.annotations.add(OPERATOR, OVEN, text, t + start_off, None if end_off is None else t + end_off, tag)
    assert err.value.field == field
    assert audit.kinds() == []


def test_saved_views_are_per_user_or_shared_at_the_site(wired: tuple[Services, MemoryAudit]) -> None:
    svc, audit = wired
    pens = ["zone1_temperature", f"{OVEN}/zone1_setpoint"]
    mine = svc.views.save(VIEWER, OVEN, "Zone 1 last day", pens, span_s=86400)
    assert mine.pens == (f"{OVEN}/zone1_temperature", f"{OVEN}/zone1_setpoint") and mine.span_s == 86400
    t = now_us()
    shared = svc.views.save(OPERATOR, OVEN, "Burner trip", [f"{OVEN}/gas_flow"], start_us=t - 3600_000_000,
                            end_us=t, shared=True)
    assert (shared.start_us, shared.end_us, shared.span_s) == (t - 3600_000_000, t, None)
    assert [v.name for v in svc.views.views(VIEWER, OVEN)] == ["Burner trip", "Zone 1 last day"]
    assert [v.name for v in svc.views.views(OTHER_OP)] == ["Burner trip"]  # not vic's own view
    assert svc.views.views(DETROIT) == []
    with pytest.raises(NotFound):
        svc.views.view(OTHER_OP, mine.id)  # another user's own view is not found
    with pytest.raises(NotFound):
        svc.views.view(DETROIT, shared.id)
    assert svc.views.view(VIEWER, shared.id).pens == (f"{OVEN}/gas_flow",)
    with pytest.raises(AccessDenied):
        svc.views.save(VIEWER, OVEN, "share it", pens, span_s=60, shared=True)  # sharing takes an operator
    with pytest.raises(AccessDenied):
        svc.views.delete_view(VIEWER, shared.id)  # not the owner
    svc.views.delete_view(VIEWER, mine.id)
    assert [v.name for v in svc.views.views(VIEWER, OVEN)] == ["Burner trip"]
    assert audit.kinds() == ["trend.view.save", "trend.view.save", "trend.view.delete"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": "", "pens": ["gas_flow"], "span_s": 60}, "name"),
    ({"name": "x" * 101, "pens": ["gas_flow"], "span_s": 60}, "name"),
    ({"name": "n", "pens": [], "span_s": 60}, "pens"),
    ({"name": "n", "pens": ["nope"], "span_s": 60}, "pens"),
    ({"name": "n", "pens": ["gas_flow"]}, "span_s"),
    ({"name": "n", "pens": ["gas_flow"], "span_s": 60, "start_us": 1, "end_us": 2}, "span_s"),
    ({"name": "n", "pens": ["gas_flow"], "span_s": 0}, "span_s"),
    ({"name": "n", "pens": ["gas_flow"], "start_us": 5, "end_us": 5}, "end"),
])
def test_bad_views_are_refused_naming_the_field(wired: tuple[Services, MemoryAudit], kwargs: dict[str, object],
                                                field: str) -> None:
    svc, _ = wired
    with pytest.raises((InvalidValue, NotFound, QueryError)) as err:
        svc.views.save(OPERATOR, OVEN, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
