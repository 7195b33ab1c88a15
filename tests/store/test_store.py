"""The store's contract, run on SQLite and on PostgreSQL: same calls, same answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from plantlink.store import NotFound, Store, StoreError, default_url, migrate

S = 1_000_000
M1, M2, OTHER = "s1/a1/l1/m1", "s1/a1/l1/m2", "s2/a1/l9/m9"
L1, L9 = "s1/a1/l1", "s2/a1/l9"


def test_open_migrates_to_head_and_reopens(store_url: str) -> None:
    s = Store.open(store_url)
    head = migrate.head()
    assert s.revision == head and head is not None
    s.open_interval(M1, L1, "running", 10 * S, "early")
    s.close()
    s = Store.open(store_url)  # already at head: nothing to do, data kept
    assert s.revision == head
    assert [iv.state for iv in s.open_intervals()] == ["running"]
    insp = sa.inspect(s.engine)
    assert {"state_intervals", "downtime_events", "meta", "alembic_version"} <= set(insp.get_table_names())
    s.close()


def test_default_url_is_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    url = default_url(tmp_path / "d")
    s = Store.open(url)
    s.close()
    assert (tmp_path / "d" / "plantlink.sqlite").is_file()


def test_bad_urls_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="invalid store URL"):
        Store.open("not a url")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_open_closes_the_previous_interval_and_queries_clip(store: Store) -> None:
    store.open_interval(M1, L1, "running", 100 * S, "early")
    store.open_interval(M1, L1, "idle", 160 * S, "early")
    store.open_interval(M1, L1, "running", 200 * S, "late")
    store.open_interval(M2, L1, "faulted", 150 * S, None)
    store.open_interval(OTHER, L9, "running", 0, None)
    got = store.intervals(120 * S, 400 * S, machines=[M1, M2], open_until=300 * S)
    rows = [(iv.machine, iv.state, iv.start_us // S, iv.end_us // S, iv.shift) for iv in got]  # type: ignore[operator]
    assert rows == [
        (M1, "running", 120, 160, "early"),
        (M1, "idle", 160, 200, "early"),
        (M1, "running", 200, 300, "late"),
        (M2, "faulted", 150, 300, None),
    ]
    # the light read: the same rows, projected
    assert store.spans(120 * S, 400 * S, machines=[M1, M2], open_until=300 * S) == \
        [(iv.machine, iv.start_us, iv.end_us, iv.state) for iv in got]
    assert store.spans(0, 1000 * S) == [(iv.machine, iv.start_us, iv.end_us, iv.state)
                                        for iv in store.intervals(0, 1000 * S)]
    by_line = store.intervals(0, 1000 * S, line=L9)
    assert [(iv.machine, iv.start_us, iv.end_us) for iv in by_line] == [(OTHER, 0, 1000 * S)]
    assert sorted(iv.machine for iv in store.open_intervals()) == [M1, M2, OTHER]
    assert store.close_interval(M1, 250 * S) == 1
    assert store.close_interval(M1, 260 * S) == 0
    assert store.intervals(240 * S, 300 * S, machines=[M1])[0].end_us == 250 * S
    with pytest.raises(StoreError, match="reversed range"):
        store.intervals(10, 5)
    with pytest.raises(StoreError, match="reversed range"):
        store.spans(10, 5)


def test_close_never_ends_before_the_start(store: Store) -> None:
    store.open_interval(M1, L1, "running", 100 * S)
    store.close_interval(M1, 50 * S)
    assert store.open_intervals() == []
    assert store.intervals(0, 1000 * S, machines=[M1]) == []  # closed at its start: empty, not reported


def test_meta_round_trip(store: Store) -> None:
    assert store.get_meta("k") is None
    store.set_meta("k", 2**62)
    store.set_meta("k", 2**62 + 1)
    assert store.get_meta("k") == 2**62 + 1


def _event(store: Store, machine: str, line: str, start_s: int, end_s: int | None, state: str = "idle",
           micro: bool = False, shift: str | None = "early", site: str = "s1") -> int:
    ev = store.open_event(machine, line, site, start_s * S, state, shift)
    if end_s is not None:
        store.close_event(ev, end_s * S, state, micro)
    return ev


def test_events_close_list_filter_and_page(store: Store) -> None:
    a = _event(store, M1, L1, 100, 400, "faulted")
    b = _event(store, M2, L1, 200, 230, "idle", micro=True)
    c = _event(store, OTHER, L9, 300, None, "blocked", site="s2")
    ev = store.event(a)
    assert (ev.end_us, ev.duration_s, ev.state, ev.micro, ev.reason) == (400 * S, 300.0, "faulted", False, None)
    assert store.event(c).end_us is None and [e.id for e in store.open_events()] == [c]
    page = store.downtime(limit=2)
    assert page.total == 3 and [e.id for e in page.items] == [c, b]
    assert [e.id for e in store.downtime(limit=2, offset=2).items] == [a]
    assert [e.id for e in store.downtime(line=L1).items] == [b, a]
    assert [e.id for e in store.downtime(site="s2").items] == [c]
    assert [e.id for e in store.downtime(micro=True).items] == [b]
    assert [e.id for e in store.downtime(start_us=250 * S, end_us=350 * S).items] == [c, a]
    assert [e.id for e in store.downtime(machine=M1, state="faulted").items] == [a]
    with pytest.raises(StoreError, match="unknown downtime filter"):
        store.downtime(colour="red")
    with pytest.raises(StoreError, match="limit"):
        store.downtime(limit=0)
    with pytest.raises(NotFound, match="no downtime event with id 999"):
        store.event(999)


def test_set_reason_records_who_and_when(store: Store) -> None:
    a = _event(store, M1, L1, 100, 400)
    ev = store.set_reason(a, "Mechanical", "jam", "alice", 500 * S, "cleared by hand")
    assert (ev.reason_group, ev.reason, ev.reason_by, ev.reason_at, ev.comment) == (
        "Mechanical", "jam", "alice", 500 * S, "cleared by hand")
    assert [e.id for e in store.downtime(has_reason=True).items] == [a]
    assert store.downtime(has_reason=False).total == 0
    ev = store.set_reason(a, None, None, "bob", 600 * S)
    assert (ev.reason, ev.reason_by) == (None, "bob")
    with pytest.raises(NotFound):
        store.set_reason(12345, "g", "r", "x", 0)


def test_pareto_by_reason_machine_and_shift_by_hand(store: Store) -> None:
    # jam: 300 s + 100 s; no coil: 200 s; unassigned: 150 s; micro-stops: 30 s (jam) + 20 s (unassigned);
    # unknown: 50 s. A stop half inside the range counts only its inside part; another line is excluded.
    e1 = _event(store, M1, L1, 1000, 1300, "faulted", shift="early")
    e2 = _event(store, M2, L1, 1400, 1500, "faulted", shift="late")
    e3 = _event(store, M1, L1, 1600, 1800, "starved", shift="late")
    _event(store, M2, L1, 1900, 2050, "idle", shift="late")  # range ends at 2000: 100 s inside
    e5 = _event(store, M1, L1, 950, 1030, "idle", micro=True, shift="early")  # 30 s inside
    _event(store, M2, L1, 1100, 1120, "idle", micro=True, shift="early")
    _event(store, M1, L1, 1200, 1250, "unknown", shift="early")
    _event(store, OTHER, L9, 1000, 1900, "faulted", site="s2")
    for ev, grp, reason in ((e1, "Mechanical", "jam"), (e2, "Mechanical", "jam"), (e3, "Material", "no coil"),
                            (e5, "Mechanical", "jam")):
        store.set_reason(ev, grp, reason, "op", 0)
    p = store.pareto("reason", 1000 * S, 2000 * S, line=L1)
    rows = [(r.group, r.key, r.count, r.duration_s, r.micro.count, r.micro.duration_s) for r in p.rows]
    assert rows == [
        ("Mechanical", "jam", 2, 400.0, 1, 30.0),
        ("Material", "no coil", 1, 200.0, 0, 0.0),
        (None, None, 1, 100.0, 1, 20.0),
    ]
    assert [r.share for r in p.rows] == pytest.approx([400 / 700, 200 / 700, 100 / 700])
    assert [r.cumulative for r in p.rows] == pytest.approx([400 / 700, 600 / 700, 1.0])
    assert (p.total.count, p.total.duration_s) == (4, 700.0)
    assert (p.micro.count, p.micro.duration_s) == (2, 50.0)
    assert (p.unknown.count, p.unknown.duration_s) == (1, 50.0)

    by_machine = store.pareto("machine", 1000 * S, 2000 * S, site="s1")
    assert [(r.key, r.count, r.duration_s) for r in by_machine.rows] == [(M1, 2, 500.0), (M2, 2, 200.0)]
    by_shift = store.pareto("shift", 1000 * S, 2000 * S, line=L1)
    assert [(r.key, r.count, r.duration_s, r.micro.count) for r in by_shift.rows] == [
        ("late", 3, 400.0, 0), ("early", 1, 300.0, 2)]
    everything = store.pareto("machine", 0, 10_000 * S)
    assert everything.rows[0].key == OTHER and everything.rows[0].duration_s == 900.0
    with pytest.raises(StoreError, match="choose one of reason, machine, shift"):
        store.pareto("colour", 0, 1)
    with pytest.raises(StoreError, match="reversed"):
        store.pareto("reason", 5, 1)


def test_pareto_counts_open_stops_up_to_the_range_end(store: Store) -> None:
    _event(store, M1, L1, 100, None, "faulted")
    p = store.pareto("machine", 0, 160 * S)
    assert [(r.key, r.count, r.duration_s) for r in p.rows] == [(M1, 1, 60.0)]


def test_the_migrations_build_exactly_the_declared_tables(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from plantlink.store.tables import metadata

    with store.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []


def test_runs_end_as_a_stop_or_a_crash_and_give_the_counters_their_cuts(store: Store) -> None:
    assert store.cuts(0, 10**9 * S) == []  # nothing on record: no cut
    run1, crashed = store.begin_run(100 * S, None)
    assert crashed == []
    store.end_run(run1, 200 * S)  # a clean stop
    run2, crashed = store.begin_run(300 * S, 250 * S)
    assert crashed == []
    # run 2 is never stopped; run 3 starts after its last known time, 350 s
    run3, crashed = store.begin_run(400 * S, 350 * S)
    assert [(r.id, r.start_us, r.end_us, r.end_reason) for r in crashed] == [(run2, 300 * S, 350 * S, "crash")]
    assert [(r.start_us, r.end_us, r.end_reason) for r in store.runs(0, 500 * S)] == [
        (100 * S, 200 * S, "stop"), (300 * S, 350 * S, "crash"), (400 * S, None, None)]
    # the clean stop; the crash's last known time and the instant before the next start (nothing before the
    # first run: nothing was read before it)
    assert store.cuts(0, 500 * S) == [200 * S, 350 * S, 400 * S - 1]
    assert store.cuts(201 * S, 390 * S) == [350 * S]  # only those in the range
    assert store.runs(210 * S, 290 * S) == []
    # a run left open at a last known time before its own start is closed at its start, never before
    run4, crashed = store.begin_run(500 * S, 10 * S)
    assert [(r.id, r.end_us) for r in crashed] == [(run3, 400 * S)] and run4 > run3


def test_the_first_run_after_an_upgrade_is_cut_off_from_what_plantlink_stored_before(store: Store) -> None:
    # plantlink ran before it recorded runs: its state engine's last known time is 90 s
    _, crashed = store.begin_run(100 * S, 90 * S)
    assert crashed == []
    assert [(r.start_us, r.end_us, r.end_reason) for r in store.runs(0, 200 * S)] == [
        (90 * S, 90 * S, "crash"), (100 * S, None, None)]
    assert store.cuts(0, 200 * S) == [90 * S, 100 * S - 1]
