"""Downtime events built from state changes: merging, dominant state, micro-stops, unknown apart, planned
time and shifts, reasons checked against the line's tree, Pareto by hand, crash recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantlink.engines.calendar import PlannedTime
from plantlink.engines.downtime import DowntimeEngine, ReasonError
from plantlink.engines.states import StateEngine
from plantlink.errors import PlantlinkError
from plantlink.model import Plant
from plantlink.samples import iso_us
from plantlink.store import DowntimeEvent, NotFound, Store, default_url
from tests.store.plants import BAD, GOOD, LINE, MONDAY, SHIFTS, S, batch, plant, tag_ids

H = 3600 * S
T0 = MONDAY + 8 * H
ROBOT, WELDER = f"{LINE}/robot", f"{LINE}/welder"
CODE = {"idle": 0, "running": 1, "starved": 2, "blocked": 3, "faulted": 4, "changeover": 6}


class Line:
    """A state engine and a downtime engine on a real SQLite store, driven through the robot's inputs."""

    def __init__(self, tmp_path: Path, calendar: bool = False, start_us: int = T0):
        self.plant: Plant = plant(SHIFTS if calendar else "")
        self.ids = tag_ids(self.plant)
        self.store = Store.open(default_url(tmp_path))
        planned = {s.name: PlannedTime.of_site(s) for s in self.plant.sites} if calendar else {}
        self.states = StateEngine(self.plant, self.store, planned, tag_ids=self.ids)
        self.downtime = DowntimeEngine(self.plant, self.store, now=lambda: 42)
        self.downtime.attach(self.states)
        self.states.start(start_us)

    def robot(self, *steps: tuple[float, str]) -> None:
        """(seconds after T0, state name or 'bad') for the robot, via its code tag (alarm off)."""
        rows = []
        for sec, state in steps:
            t = T0 + round(sec * S)
            rows.append(("robot/alarm", t, 0, GOOD))
            rows.append(("robot/code", t, CODE.get(state, 0), BAD if state == "bad" else GOOD))
        self.states.feed(batch(self.ids, rows))

    def events(self, machine: str = ROBOT) -> list[DowntimeEvent]:
        return sorted(self.store.downtime(machine=machine, limit=1000).items, key=lambda e: e.start_us)


def brief(evs: list[DowntimeEvent]) -> list[tuple[float, float | None, str, bool]]:
    return [((e.start_us - T0) / S, e.duration_s, e.state, e.micro) for e in evs]


def test_consecutive_stop_states_merge_with_the_dominant_state(tmp_path: Path) -> None:
    ln = Line(tmp_path)
    ln.robot((0, "running"), (1, "starved"), (11, "blocked"), (101, "faulted"), (131, "running"))
    assert brief(ln.events()) == [(1, 130.0, "blocked", False)]  # blocked 90 s > faulted 30 s > starved 10 s


def test_micro_stops_by_the_line_threshold(tmp_path: Path) -> None:
    ln = Line(tmp_path)  # micro_stop: 2m
    ln.robot((0, "running"), (10, "faulted"), (15, "running"), (20, "idle"), (139.9, "running"),
             (200, "changeover"), (320, "running"))
    assert brief(ln.events()) == [(10, 5.0, "faulted", True), (20, 119.9, "idle", True),
                                  (200, 120.0, "changeover", False)]


def test_unknown_is_an_event_apart_and_an_open_stop_stays_open(tmp_path: Path) -> None:
    ln = Line(tmp_path)
    ln.robot((0, "running"), (10, "starved"), (20, "bad"), (40, "starved"), (50, "running"), (60, "idle"))
    evs = ln.events()
    # the robot's unknown state from start until its inputs came, at the same instant, left no event
    assert brief(evs) == [(10, 10.0, "starved", True), (20, 20.0, "unknown", False),
                          (40, 10.0, "starved", True), (60, None, "idle", False)]
    assert evs[-1].end_us is None


def test_planned_stops_end_stops_and_shifts_cut_them(tmp_path: Path) -> None:
    ln = Line(tmp_path, calendar=True)  # T0 = 08:00, break 10:00-10:30, early until 14:00, late until 22:00
    ln.robot((0, "running"), (1.5 * 3600, "faulted"), (3 * 3600, "running"),
             (5.5 * 3600, "blocked"), (6.5 * 3600, "running"))
    ln.states.tick(T0 + 15 * H)
    assert [((e.start_us - T0) / H, e.duration_s, e.state, e.shift) for e in ln.events()] == [
        (1.5, 1800.0, "faulted", "early"),  # 09:30 until the break at 10:00 (the break is not downtime)
        (2.5, 1800.0, "faulted", "early"),  # 10:30, after the break, until 11:00
        (5.5, 1800.0, "blocked", "early"),  # 13:30 until the shift change
        (6.0, 1800.0, "blocked", "late"),  # 14:00 until 14:30
    ]


def test_reasons_are_checked_against_the_line_tree(tmp_path: Path) -> None:
    ln = Line(tmp_path)
    ln.robot((0, "running"), (10, "faulted"), (300, "running"))
    ev = ln.events()[0].id
    got = ln.downtime.assign_reason(ev, "jam", by="alice", comment="cleared")
    assert (got.reason_group, got.reason, got.reason_by, got.reason_at, got.comment) == (
        "Mechanical", "jam", "alice", 42, "cleared")
    got = ln.downtime.assign_reason(ev, "misc", group="Other", by="bob", at_us=T0)
    assert (got.reason_group, got.reason, got.reason_by, got.reason_at) == ("Other", "misc", "bob", T0)
    with pytest.raises(ReasonError) as err:
        ln.downtime.assign_reason(ev, "coffee", by="bob")
    assert str(err.value) == (f"unknown reason 'coffee' for line {LINE}; valid reasons: Mechanical: jam, tool broken; "
                              "Material: no coil, bad coil, misc; Other: jam-other, misc")
    with pytest.raises(ReasonError, match="unknown reason 'jam' in group 'Material'"):
        ln.downtime.assign_reason(ev, "jam", group="Material", by="bob")
    with pytest.raises(ReasonError, match=r"unknown reason group 'Electrical'.*valid groups: Mechanical, Material"):
        ln.downtime.assign_reason(ev, "jam", group="Electrical", by="bob")
    with pytest.raises(ReasonError, match=r"'misc' is in several groups .*\(Material, Other\): give the group"):
        ln.downtime.assign_reason(ev, "misc", by="bob")
    with pytest.raises(ReasonError, match="say who"):
        ln.downtime.assign_reason(ev, "jam", by=" ")
    with pytest.raises(NotFound):
        ln.downtime.assign_reason(99999, "jam", by="bob")
    assert ln.store.event(ev).reason == "misc"  # failed attempts changed nothing
    cleared = ln.downtime.assign_reason(ev, None, by="carol")
    assert (cleared.reason, cleared.reason_group, cleared.reason_by) == (None, None, "carol")
    assert ln.downtime.reasons(LINE)["Mechanical"] == ["jam", "tool broken"]


def test_pareto_from_state_changes_by_hand(tmp_path: Path) -> None:
    ln = Line(tmp_path, calendar=True)  # early shift until 14:00, then late
    h = 3600
    ln.robot((0, "running"),
             (600, "faulted"), (900, "running"),  # 300 s, early -> jam
             (1000, "starved"), (1400, "running"),  # 400 s, early -> no coil
             (1500, "idle"), (1530, "running"),  # 30 s micro, early, no reason
             (6 * h - 100, "blocked"), (6 * h + 500, "running"),  # 100 s early + 500 s late (cut at 14:00) -> jam
             (6 * h + 600, "bad"), (6 * h + 660, "running"),  # 60 s unknown
             (6 * h + 700, "faulted"), (6 * h + 710, "running"))  # 10 s micro, late -> jam
    evs = {((e.start_us - T0) // S): e.id for e in ln.events()}
    for start_s, reason in ((600, "jam"), (1000, "no coil"), (6 * h - 100, "jam"), (6 * h, "jam"),
                            (6 * h + 700, "jam")):
        ln.downtime.assign_reason(evs[start_s], reason, by="op")
    ln.states.tick(T0 + 8 * H)  # 16:00, the end of the analysed range
    p = ln.downtime.pareto("reason", T0, T0 + 8 * H, line=LINE)
    assert [(r.key, r.count, r.duration_s, r.micro.count, r.micro.duration_s) for r in p.rows] == [
        ("jam", 3, 900.0, 1, 10.0), ("no coil", 1, 400.0, 0, 0.0), (None, 0, 0.0, 1, 30.0)]
    assert (p.total.count, p.total.duration_s, p.micro.count, p.micro.duration_s) == (4, 1300.0, 2, 40.0)
    # unknown: the robot's 60 s, and the press and welder, which never had inputs: unknown 08:00-10:00,
    # 10:30-14:00 and 14:00-16:00 (cut at the shift change), 27000 s each
    assert (p.unknown.count, p.unknown.duration_s) == (1 + 2 * 3, 60.0 + 2 * 27000.0)
    shifts = ln.downtime.pareto("shift", T0, T0 + 8 * H, site="s1")
    assert [(r.key, r.count, r.duration_s, r.micro.count) for r in shifts.rows] == [
        ("early", 3, 800.0, 1), ("late", 1, 500.0, 1)]
    machines = ln.downtime.pareto("machine", T0, T0 + 8 * H)
    assert [(r.key, r.duration_s) for r in machines.rows] == [(ROBOT, 1300.0)]
    assert machines.unknown.count == 7
    robot_only = ln.downtime.events(machine=ROBOT, micro=True)
    assert [(e.start_us - T0) // S for e in robot_only.items] == [6 * h + 700, 1500]


def test_crash_recovery_closes_open_events_at_the_last_known_time(tmp_path: Path) -> None:
    ln = Line(tmp_path)
    ln.robot((0, "running"), (10, "starved"), (40, "faulted"))
    ln.states.tick(T0 + 100 * S)  # heartbeat: 10 s after the last change at 40 s -> 100 s
    assert ln.events()[-1].end_us is None
    # crash; a new pair of engines on the same store
    st = StateEngine(ln.plant, ln.store, {})
    dt = DowntimeEngine(ln.plant, ln.store)
    closed = dt.attach(st)
    robot = [e for e in closed if e.machine == ROBOT]
    assert brief(robot) == [(10, 90.0, "faulted", True)]  # faulted 60 s > starved 30 s; 90 s < 2 min: micro
    st.start(T0 + 500 * S)
    with pytest.raises(PlantlinkError, match="before starting"):
        DowntimeEngine(ln.plant, ln.store).attach(st)


def test_a_short_stop_cut_by_a_shift_change_is_micro_in_both_shifts(tmp_path: Path) -> None:
    ln = Line(tmp_path, calendar=True)
    ln.robot((0, "running"), (6 * 3600 - 50, "idle"), (6 * 3600 + 50, "running"))
    assert [(e.duration_s, e.shift, e.micro) for e in ln.events()] == [(50.0, "early", True), (50.0, "late", True)]


def test_a_clean_stop_closes_events_as_a_clean_stop_and_the_next_start_recovers_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ln = Line(tmp_path)
    ln.robot((0, "running"), (10, "faulted"), (20, "running"), (30, "bad"))
    ln.states.stop(T0 + 300 * S)
    evs = ln.events()
    assert brief(evs) == [(10, 10.0, "faulted", True), (30, 270.0, "unknown", False)]
    assert [e.end_reason for e in evs] == ["change", "stop"]
    assert ln.store.open_events() == [] and ln.store.open_intervals() == []
    robot = ln.store.intervals(0, T0 + H, machines=[ROBOT])
    assert [(iv.state, iv.end_reason) for iv in robot] == [
        ("running", "change"), ("faulted", "change"), ("running", "change"), ("unknown", "stop")]
    # the next start: nothing left open, nothing logged as a crash
    st = StateEngine(ln.plant, ln.store, {})
    with caplog.at_level("WARNING"):
        assert DowntimeEngine(ln.plant, ln.store).attach(st) == []
        assert st.start(T0 + 400 * S) == []
    assert "crash" not in caplog.text and "cleanly" not in caplog.text
    runs = ln.store.runs(0, T0 + H)
    assert [(r.start_us, r.end_us, r.end_reason) for r in runs] == [(T0, T0 + 300 * S, "stop"),
                                                                     (T0 + 400 * S, None, None)]


def test_crash_recovery_says_when_in_readable_times_and_records_why(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ln = Line(tmp_path)
    ln.robot((0, "running"), (10, "faulted"))
    ln.states.tick(T0 + 60 * S)  # the heartbeat: the last known time is 60 s
    st = StateEngine(ln.plant, ln.store, {})
    with caplog.at_level("WARNING"):
        DowntimeEngine(ln.plant, ln.store).attach(st)
        st.start(T0 + 500 * S)
    ev = ln.events()[0]
    assert (ev.end_us, ev.end_reason) == (T0 + 60 * S, "crash")
    assert ln.store.intervals(0, T0 + 60 * S, machines=[ROBOT])[-1].end_reason == "crash"
    assert [(r.end_us, r.end_reason) for r in ln.store.runs(0, T0 + H)] == [(T0 + 60 * S, "crash"), (None, None)]
    # times are ISO 8601 with an offset (T0 is Monday 2026-01-05 08:00 UTC)
    assert iso_us(T0 + 60 * S) == "2026-01-05T08:01:00.000000+00:00"
    assert iso_us(T0 + 60 * S) in caplog.text and iso_us(T0 + 10 * S) in caplog.text
    assert str(T0 + 60 * S) not in caplog.text  # never raw microseconds
    assert "did not stop cleanly" in caplog.text
