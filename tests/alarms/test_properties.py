"""Property tests: the vectorised evaluation equals a sample-by-sample reference whatever the batching, and
any sequence of values and operator actions keeps the ISA-18.2 invariants."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantlink.engines.alarms import AlarmActionError, AlarmEngine, AlarmEvent, isa
from plantlink.engines.alarms.compiled import compile_alarms
from plantlink.model.alarms import AlarmDef
from plantlink.samples import numeric_batch
from tests.alarms.plants import GOOD, T0, S

PATH = "s/a/l/m/x"


def reference(kind: str, limit: float, db: float, on_s: float, off_s: float,
              samples: list[tuple[int, float]]) -> list[tuple[int, bool]]:
    """Sample by sample, straight from the definition in the module docstring."""
    raw, since, active, out = False, -math.inf, False, []
    on_us, off_us = round(on_s * S), round(off_s * S)

    def mature(t: float) -> None:
        nonlocal active
        due = since + (on_us if raw else off_us)
        if raw != active and due <= t:
            active = raw
            out.append((int(due), raw))

    for t, v in samples:
        if kind == "hi":
            new = True if v > limit else False if v <= limit - db else raw
        else:
            new = True if v < limit else False if v >= limit + db else raw
        if new != raw:
            mature(t)
            raw, since = new, t
        mature(t)
    return out


values = st.lists(st.sampled_from([0.0, 4.0, 5.0, 6.0, 9.5, 10.0, 10.5, 14.0, 15.0, 16.0]), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(["hi", "lo"]), vals=values, gaps=st.lists(st.integers(1, 3), min_size=40, max_size=40),
       db=st.sampled_from([0.0, 0.5, 5.0]), on=st.sampled_from([0.0, 1.0, 2.5]), off=st.sampled_from([0.0, 2.0]),
       cuts=st.lists(st.integers(0, 40), max_size=6))
def test_vectorised_equals_the_reference_for_any_batching(kind: str, vals: list[float], gaps: list[int], db: float,
                                                          on: float, off: float, cuts: list[int]) -> None:
    ts = (T0 + np.cumsum(gaps[:len(vals)]) * S // 2).tolist()
    d = AlarmDef(name="a", type=kind, limit=10.0, deadband=db, on_delay=on, off_delay=off)  # type: ignore[arg-type]
    eng = AlarmEngine(compiled=compile_alarms([(PATH, "s", "s/a/l/m", d, None)]), now=lambda: T0,
                      tag_ids={PATH: 1})
    got: list[tuple[int, bool]] = []
    eng.add_listener(lambda e: got.append((e.ts_us, e.to_state == isa.UNACK)) if e.event in ("activate", "clear")
                     else None)
    edges = sorted({0, len(vals), *[min(c, len(vals)) for c in cuts]})
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            eng.feed(numeric_batch([1] * (hi - lo), ts[lo:hi], vals[lo:hi], GOOD))
    assert got == reference(kind, 10.0, db, on, off, list(zip(ts, vals, strict=True)))


class FakeJournal:
    """An in-memory AlarmStore: counts what the engine journals."""

    def __init__(self) -> None:
        self.entries: list[object] = []

    def record(self, entries: list[object], states: list[object]) -> None:
        self.entries.extend(entries)

    def saved_states(self) -> list[object]:
        return []


actions = st.lists(st.one_of(
    st.tuples(st.just("value"), st.floats(0, 20, allow_nan=False)),
    st.tuples(st.just("bad"), st.just(0.0)),
    st.tuples(st.sampled_from(["ack", "shelve", "unshelve", "oos", "ins", "tick"]), st.just(0.0)),
), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=actions, latched=st.booleans(), on=st.sampled_from([0.0, 1.0]))
def test_any_sequence_keeps_the_isa_invariants(ops: list[tuple[str, float]], latched: bool, on: float) -> None:
    d = AlarmDef(name="a", type="hi", limit=10.0, deadband=1.0, on_delay=on, latched=latched)
    journal = FakeJournal()
    clock = [T0]
    eng = AlarmEngine(store=journal, compiled=compile_alarms([(PATH, "s", "s/a/l/m", d, None)]),  # type: ignore[arg-type]
                      now=lambda: clock[0], tag_ids={PATH: 1})
    events: list[AlarmEvent] = []
    eng.add_listener(events.append)
    eng.start()
    key = f"{PATH}:a"
    for op, v in ops:
        clock[0] += S
        before = eng.state_of(key)
        try:
            if op == "value":
                eng.feed(numeric_batch([1], clock[0], [v], GOOD))
            elif op == "bad":
                eng.feed(numeric_batch([1], clock[0], [0.0], 0))
            elif op == "ack":
                eng.acknowledge([key], "op")
            elif op == "shelve":
                eng.shelve(key, clock[0] + 3 * S, "why", "op")
            elif op == "unshelve":
                eng.unshelve(key, "op")
            elif op in ("oos", "ins"):
                eng.set_out_of_service(key, op == "oos", "op")
            else:
                eng.tick()
        except AlarmActionError:
            assert eng.state_of(key) == before  # a refused action changes nothing
        state, active = eng.state_of(key), bool(eng.ev.active[0])
        if state not in isa.HIDDEN:  # shown states tell the truth about the condition
            assert (state in (isa.UNACK, isa.ACKED)) == active
        if state == isa.LATCHED:
            assert latched
        if op == "ack" and before == isa.RTN_UNACK:
            assert state == isa.NORMAL  # acknowledged and returned to normal: normal (latched goes via LATCHED)
    assert len(journal.entries) == len(events)  # every transition journaled
    for prev, e in itertools.pairwise(events):
        assert e.from_state == prev.to_state  # one unbroken chain of states
    for e in events:  # a shelved alarm never annunciates while shelved
        assert not (e.from_state == isa.SHELVED and e.event in ("activate", "clear"))
