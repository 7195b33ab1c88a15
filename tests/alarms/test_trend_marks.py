"""What a machine's trend marks on its time axis (``services.trends``): each alarm activation from its
activation to its clear, found in the alarm journal (one that began before the range too), the open one to
now; and only for callers who may view the machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from plantlink.engines.alarms import AlarmEngine
from plantlink.engines.alarms.service import AlarmService
from plantlink.errors import AccessDenied
from plantlink.identity import Principal
from plantlink.samples import now_us
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore
from tests.alarms.plants import GOOD, M, S, batch, plant, tag_ids

VIEWER = Principal("vic", {"s1": "viewer"})
OTHER = Principal("sam", {"s2": "operator"})


def test_alarm_activations_are_spans_from_activation_to_clear(tmp_path: Path) -> None:
    p = plant()
    ids = tag_ids(p)
    store = Store.open(default_url(tmp_path))
    eng = AlarmEngine(p, AlarmStore(store.engine), tag_ids=ids)
    t = now_us()
    temp = f"{M}/temp"
    for at, value in ((-100, 300.0), (-60, 100.0), (-20, 300.0)):  # too hot, normal, too hot again
        eng.feed(batch(ids, [(temp, t + at * S, value, GOOD), (f"{M}/temp_sp", t + at * S, value, GOOD)]))
        for dt in range(0, 4):  # the hi alarm's on- and off-delays pass
            eng.tick(t + (at + dt) * S)
    svc = AlarmService(eng, AlarmStore(store.engine))
    parts = Components(*(lambda: None for _ in range(8)))
    services = Services.build(p, ids, LatestValues(), dataclasses.replace(parts, alarms=lambda: svc,
                                                                         store=lambda: store))
    try:
        marks = services.trends.marks(VIEWER, M, t - 200 * S, t)
        hihi = [(a.start_us, a.end_us) for a in marks.alarms if a.alarm == f"{temp}:hihi"]
        assert hihi == [(t - 100 * S, t - 60 * S), (t - 20 * S, None)]
        hi = [a for a in marks.alarms if a.alarm == f"{temp}:hi"]
        assert len(hi) == 2 and hi[0].priority == "high" and hi[0].tag == temp
        assert t - 100 * S < hi[0].start_us <= t - 97 * S and t - 60 * S <= (hi[0].end_us or 0) <= t - 56 * S
        assert [a.start_us for a in marks.alarms] == sorted(a.start_us for a in marks.alarms)
        # a range that starts while the alarm is active still shows that activation (from before the range)
        later = services.trends.marks(VIEWER, M, t - 80 * S, t - 30 * S)
        assert [(a.start_us, a.end_us) for a in later.alarms if a.alarm == f"{temp}:hihi"] == [
            (t - 100 * S, t - 60 * S)]
        assert services.trends.marks(VIEWER, M, t - 50 * S, t - 30 * S).alarms == ()
        assert later.downtime == ()  # no downtime recorded for the oven
        with pytest.raises(AccessDenied):
            services.trends.marks(OTHER, M, t - 200 * S, t)
    finally:
        store.close()
