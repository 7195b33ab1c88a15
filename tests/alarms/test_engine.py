"""The alarm engine on crafted batches: each kind of alarm at its edges (limits, deadbands, delays), the
ISA-18.2 states and operator actions, the journal in a real SQLite store, restore after a restart (on
SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantlink.engines.alarms import AlarmActionError, AlarmEngine, AlarmEvent
from plantlink.engines.states import StateChange
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore
from tests.alarms.plants import BAD, GOOD, M2, T0, M, S, batch, plant, tag_ids
from tests.store.conftest import pg_url, store_url  # noqa: F401  (fixtures: SQLite and PostgreSQL)

TEMP, SP, DOOR = f"{M}/temp", f"{M}/temp_sp", f"{M}/door"


@pytest.fixture
def astore(tmp_path: Path) -> Iterator[AlarmStore]:
    store = Store.open(default_url(tmp_path))
    yield AlarmStore(store.engine)
    store.close()


class Rig:
    def __init__(self, store: AlarmStore | None):
        self.plant = plant()
        self.ids = tag_ids(self.plant)
        self.eng = AlarmEngine(self.plant, store, now=lambda: T0, tag_ids=self.ids)
        self.events: list[AlarmEvent] = []
        self.eng.add_listener(self.events.append)
        self.eng.start(T0)

    def feed(self, *rows: tuple[str, float, float, int]) -> None:
        """rows: (tag, seconds after T0, value, quality)."""
        self.eng.feed(batch(self.ids, [(r[0], T0 + round(r[1] * S), r[2], r[3]) for r in rows]))

    def state(self, name: str, tag: str = TEMP) -> str:
        return self.eng.state_of(f"{tag}:{name}")

    def seen(self, name: str, tag: str = TEMP) -> list[tuple[str, float]]:
        return [(e.event, (e.ts_us - T0) / S) for e in self.events if e.key == f"{tag}:{name}"]


@pytest.fixture
def rig(astore: AlarmStore) -> Rig:
    return Rig(astore)


def test_hihi_at_the_limit_is_normal_above_it_active(rig: Rig) -> None:
    rig.feed((TEMP, 1, 250.0, GOOD))
    assert rig.state("hihi") == "normal"  # active above the limit, not at it
    rig.feed((TEMP, 2, 250.001, GOOD))
    assert rig.state("hihi") == "unack_active"
    rig.feed((TEMP, 3, 249.0, GOOD))
    assert rig.state("hihi") == "rtn_unack"  # no deadband: back at or below the limit clears it
    assert rig.seen("hihi") == [("activate", 2), ("clear", 3)]


def test_hi_deadband_and_delays_at_their_edges(rig: Rig) -> None:
    # hi: limit 200, deadband 5, on_delay 2 s, off_delay 1 s
    rig.feed((TEMP, 10, 201, GOOD), (TEMP, 11.999, 202, GOOD))
    assert rig.state("hi") == "normal"  # held 1.999 s < 2 s
    rig.feed((TEMP, 12, 203, GOOD))
    assert rig.state("hi") == "unack_active"
    assert rig.seen("hi") == [("activate", 12)]  # at since + on_delay exactly
    rig.feed((TEMP, 13, 195.01, GOOD), (TEMP, 20, 195.01, GOOD))
    assert rig.state("hi") == "unack_active"  # inside the deadband: still active
    rig.feed((TEMP, 21, 195.0, GOOD), (TEMP, 21.5, 195.0, GOOD))
    assert rig.state("hi") == "unack_active"  # cleared by the sample at 21, off delay 1 s not yet over
    rig.feed((TEMP, 22, 190, GOOD))
    assert rig.seen("hi")[-1] == ("clear", 22)


def test_a_condition_interrupted_before_its_delay_never_activates(rig: Rig) -> None:
    rig.feed((TEMP, 0, 210, GOOD), (TEMP, 1, 150, GOOD), (TEMP, 1.5, 210, GOOD), (TEMP, 3, 210, GOOD))
    assert rig.seen("hi") == []
    rig.feed((TEMP, 3.5, 210, GOOD))
    assert rig.seen("hi") == [("activate", 3.5)]


def test_delays_run_on_the_clock_without_new_samples(rig: Rig) -> None:
    rig.feed((TEMP, 0, 210, GOOD))
    rig.eng.tick(T0 + 1 * S)
    assert rig.state("hi") == "normal"
    rig.eng.tick(T0 + 7 * S)
    assert rig.seen("hi") == [("activate", 2)]  # placed at since + on_delay, not at the tick


def test_comm_loss_after_its_delay_and_bad_quality_holds_value_alarms(rig: Rig) -> None:
    rig.feed((TEMP, 0, 260, GOOD))
    assert rig.state("hihi") == "unack_active"
    rig.feed((TEMP, 1, 0.0, BAD))
    assert rig.state("hihi") == "unack_active"  # a bad sample decides nothing for the value alarms
    assert rig.state("lo") == "normal"
    rig.eng.tick(T0 + 5_900_000)
    assert rig.state("comm") == "normal"
    rig.eng.tick(T0 + 6 * S)
    assert rig.seen("comm") == [("activate", 6)]
    rig.feed((TEMP, 8, 100, GOOD))
    assert rig.state("comm") == "rtn_unack" and rig.state("hihi") == "rtn_unack"


def test_deviation_follows_both_the_value_and_the_setpoint(rig: Rig) -> None:
    rig.feed((SP, 0, 100, GOOD), (TEMP, 0, 115, GOOD))
    assert rig.state("dev") == "normal"
    rig.feed((TEMP, 1, 120.5, GOOD))
    assert rig.state("dev") == "unack_active"  # |120.5 - 100| > 20
    rig.feed((SP, 2, 110, GOOD))  # setpoint moves: deviation 10.5 <= 20 - 2
    assert rig.seen("dev") == [("activate", 1), ("clear", 2)]


def test_rate_of_change_between_consecutive_good_samples(rig: Rig) -> None:
    rig.feed((TEMP, 0, 100, GOOD), (TEMP, 2, 120, GOOD))  # 10 /s: not above the limit
    assert rig.state("ramp") == "normal"
    rig.feed((TEMP, 3, 0, BAD), (TEMP, 4, 141, GOOD))  # bad sample skipped: (141 - 120) / 2 s = 10.5 /s
    assert rig.seen("ramp") == [("activate", 4)]
    rig.feed((TEMP, 5, 140, GOOD))  # -1 /s
    assert rig.seen("ramp")[-1] == ("clear", 5)


def test_latched_discrete_needs_a_reset(rig: Rig) -> None:
    rig.feed((DOOR, 0, 1, GOOD))
    assert rig.state("open", DOOR) == "unack_active"
    rig.eng.acknowledge([f"{DOOR}:open"], "ann", "seen", T0 + 1 * S)
    rig.feed((DOOR, 2, 0, GOOD))
    assert rig.state("open", DOOR) == "latched"  # acknowledged and cleared, but latched
    rig.eng.acknowledge([f"{DOOR}:open"], "ann", "reset", T0 + 3 * S)
    assert rig.state("open", DOOR) == "normal"


def test_acknowledge_paths_and_errors(rig: Rig) -> None:
    hihi = f"{TEMP}:hihi"
    with pytest.raises(AlarmActionError, match="nothing to acknowledge") as e:
        rig.eng.acknowledge([hihi], "ann")
    assert e.value.status == 409
    with pytest.raises(AlarmActionError, match="no alarm") as e:
        rig.eng.acknowledge(["nope:x"], "ann")
    assert e.value.status == 404
    rig.feed((TEMP, 0, 300, GOOD))
    rig.eng.acknowledge([hihi], "ann")
    assert rig.state("hihi") == "ack_active"
    with pytest.raises(AlarmActionError, match="already acknowledged"):
        rig.eng.acknowledge([hihi, f"{TEMP}:hi"], "ann")
    rig.feed((TEMP, 1, 100, GOOD))
    assert rig.state("hihi") == "normal"  # acknowledged and returned to normal


def test_shelve_hides_until_its_time_then_annunciates_a_present_condition(rig: Rig) -> None:
    hihi = f"{TEMP}:hihi"
    rig.eng.shelve(hihi, T0 + 60 * S, "sensor being replaced", "bob", T0)
    rig.feed((TEMP, 1, 300, GOOD))
    assert rig.state("hihi") == "shelved"
    assert [e.event for e in rig.events if e.key == hihi] == ["shelve"]
    rig.eng.tick(T0 + 59 * S)
    assert rig.state("hihi") == "shelved"
    rig.eng.tick(T0 + 61 * S)
    assert rig.state("hihi") == "unack_active"
    assert rig.events[-1].event == "unshelve" and rig.events[-1].ts_us == T0 + 60 * S
    with pytest.raises(AlarmActionError, match="needs a reason"):
        rig.eng.shelve(hihi, T0 + 100 * S, " ", "bob", T0)


def test_out_of_service_and_back(rig: Rig) -> None:
    key = f"{M2}/force:hi"
    rig.eng.set_out_of_service(key, True, "eve", "calibration", T0)
    rig.feed((f"{M2}/force", 1, 150, GOOD))
    assert rig.eng.state_of(key) == "out_of_service"
    with pytest.raises(AlarmActionError, match="already out of service"):
        rig.eng.set_out_of_service(key, True, "eve")
    assert rig.eng.set_out_of_service(key, False, "eve", "done", T0 + 2 * S) == "unack_active"


def test_suppressed_by_design_while_the_machine_is_in_planned_stop(rig: Rig) -> None:
    lo = f"{TEMP}:lo"
    rig.eng.on_machine_state(StateChange(M, "s1/a1/l1", "s1", "planned_stop", T0, None, None, None))
    rig.feed((TEMP, 1, 20, GOOD))
    assert rig.state("lo") == "suppressed"
    assert rig.state("hihi") == "normal"  # alarms without suppress_when_state are not affected
    rig.eng.on_machine_state(StateChange(M, "s1/a1/l1", "s1", "running", T0 + 5 * S, None, "planned_stop", T0))
    assert rig.state("lo") == "unack_active"
    assert [(e.event, e.to_state) for e in rig.events if e.key == lo] == [
        ("suppress", "suppressed"), ("unsuppress", "unack_active")]


def test_every_transition_is_journaled_with_who_and_why(rig: Rig, astore: AlarmStore) -> None:
    rig.feed((TEMP, 0, 300, GOOD))
    rig.eng.acknowledge([f"{TEMP}:hihi"], "ann", "on it", T0 + 1 * S)
    rig.feed((TEMP, 2, 100, GOOD))
    got, total = astore.journal(alarms=[f"{TEMP}:hihi"], newest_first=False)
    assert total == 3
    assert [(j.event, j.from_state, j.to_state, j.actor, j.comment, (j.ts_us - T0) / S) for j in got] == [
        ("activate", "normal", "unack_active", "system", None, 0),
        ("ack", "unack_active", "ack_active", "ann", "on it", 1),
        ("clear", "ack_active", "normal", "system", None, 2)]
    assert total == len([e for e in rig.events if e.key == f"{TEMP}:hihi"])


def test_restart_restores_active_acknowledged_and_shelved(store_url: str) -> None:  # noqa: F811
    url = store_url
    a = Rig(AlarmStore(Store.open(url).engine))
    a.feed((TEMP, 0, 300, GOOD), (f"{M2}/force", 0, 150, GOOD), (DOOR, 0, 1, GOOD))
    a.eng.acknowledge([f"{TEMP}:hihi"], "ann", None, T0 + 1 * S)
    a.eng.shelve(f"{M2}/force:hi", T0 + 600 * S, "known", "bob", T0 + 1 * S)
    b = Rig(AlarmStore(Store.open(url).engine))  # a new process on the same store
    assert b.state("hihi") == "ack_active" and b.state("open", DOOR) == "unack_active"
    assert b.eng.state_of(f"{M2}/force:hi") == "shelved"
    assert b.eng.view(b.eng.info(f"{M2}/force:hi").index).shelve_reason == "known"
    b.feed((TEMP, 5, 100, GOOD))  # the restored condition clears on the next normal sample
    assert b.state("hihi") == "normal"
    b.eng.tick(T0 + 601 * S)
    assert b.eng.state_of(f"{M2}/force:hi") == "unack_active"  # still active when the shelve ran out
