"""Live SPC alarms: a drift injected into a tag with ``spc: {alarm: true}`` raises the violated rule's alarm
through the alarm engine (journal, ISA states), on a real Runtime; the limits and the rule are worked out
here by hand (I-MR: sigma = mean moving range / d2, d2(2) = 1.128)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from plantlink.engines.spc import SpcStream
from plantlink.errors import ConfigError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.model.spc import SpcSettings
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import settle

S = 1_000_000
M = "s1/a1/l1/oven"
PLANT = """
enterprise: Test
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}
sites:
  - name: s1
    timezone: UTC
    areas:
      - name: a1
        lines:
          - name: l1
            machines:
              - name: oven
                tags:
                  - name: zone1_temperature
                    source: {device: plc, address: 0, type: float32}
                    spc: {chart: imr, rules: [western_electric], alarm: true, priority: medium, learn: 10,
                          clear_after: 2}
                  - name: width
                    source: {device: plc, address: 2, type: float32}
                    spc: {chart: xbar_r, subgroup: {size: 4}, rules: [we1], alarm: true, learn: 10}
"""
#: Phase I: 99, 101 alternating: centre 100, every moving range 2, sigma = 2 / 1.128, UCL = 100 + 3 sigma.
LEARN = np.array([99.0, 101.0] * 5)
SIGMA = 2 / 1.128379  # d2(2) = 2 / sqrt(pi), tabulated 1.128
UCL = 100 + 3 * SIGMA
#: Phase II: 7 points slightly above the centre (within 1 sigma), the 8th completes "8 on one side" (we4).
DRIFT = np.full(8, 100.5)


def by_hand_we4(points: np.ndarray, center: float) -> list[int]:
    """Indices completing 8 in a row on one side of the centre (a plain loop: a second implementation)."""
    out, run, side = [], 0, 0
    for i, v in enumerate(points):
        s = int(v > center) - int(v < center)
        run = run + 1 if s != 0 and s == side else (1 if s != 0 else 0)
        side = s
        if run >= 8:
            out.append(i)
    return out


def test_stream_by_hand() -> None:
    st = SpcStream(SpcSettings.model_validate({"chart": "imr", "rules": ["western_electric"], "alarm": True,
                                              "learn": 10, "clear_after": 1}))
    ts = np.arange(30, dtype=np.int64) * S
    assert st.feed(ts[:10], LEARN) == []
    assert st.limits is not None and st.limits.center == pytest.approx(100)
    assert st.limits.ucl == pytest.approx(UCL) and st.limits.sigma == pytest.approx(SIGMA)
    # the drift in two batches: the rule completes at the 8th point, wherever the batch boundary falls
    assert st.feed(ts[10:15], DRIFT[:5]) == []
    got = st.feed(ts[15:18], DRIFT[5:])
    assert by_hand_we4(DRIFT, 100.0) == [7]
    assert [(t.rule, t.ts_us, t.active) for t in got] == [("we4", ts[17], True)]
    # one point beyond the UCL: we1 on; then a point below the centre clears both
    got = st.feed(ts[18:20], np.array([UCL + 0.1, 99.0]))
    assert [(t.rule, t.ts_us, t.active) for t in got] == [
        ("we1", ts[18], True), ("we1", ts[19], False), ("we4", ts[19], False)]


def test_a_condition_clears_after_clear_after_points() -> None:
    """clear_after 3: the point beyond the UCL holds we1 for itself and the next two points; the third clears."""
    st = SpcStream(SpcSettings.model_validate({"chart": "imr", "rules": ["we1"], "alarm": True, "learn": 10,
                                              "clear_after": 3}))
    ts = np.arange(30, dtype=np.int64) * S
    st.feed(ts[:10], LEARN)
    got = st.feed(ts[10:12], np.array([UCL + 1, 100.0]))  # the hold spans the batches
    got += st.feed(ts[12:16], np.array([99.0, 101.0, UCL + 1, 100.0]))
    got += st.feed(ts[16:20], np.array([100.0, 100.0, 100.0, 100.0]))
    assert [(t.ts_us // S, t.active) for t in got] == [(10, True), (13, False), (14, True), (17, False)]


def test_model_refuses_what_cannot_alarm_live() -> None:
    bad = PLANT.replace("spc: {chart: xbar_r, subgroup: {size: 4}", "spc: {chart: xbar_s, subgroup: {every: 1m}")
    with pytest.raises(ConfigError) as e:
        parse_plant(bad, "bad.yaml")
    assert "live alarms" in str(e.value) and "bad.yaml" in str(e.value)
    bad = PLANT.replace("type: float32}\n                    spc: {chart: imr",
                        "type: float32}\n                    alarms: [{name: x, type: spc}]\n"
                        "                    spc: {chart: imr")
    with pytest.raises(ConfigError) as e:
        parse_plant(bad, "bad.yaml")
    assert "not declared under alarms" in str(e.value)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(PLANT, "spc-live.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def publish(rt: Runtime, tag: str, start: int, values: np.ndarray) -> None:
    ts = start + np.arange(values.size) * S
    rt.bus.publish(numeric_batch(np.full(values.size, rt.tag_ids[f"{M}/{tag}"]), ts, values, 192))
    await settle(rt)


async def test_drift_raises_the_rule_alarm_live(runtime: Runtime) -> None:
    svc = runtime.services
    assert svc is not None and runtime.alarm_engine is not None
    who = Principal("op", {"s1": "operator"})
    key = f"{M}/zone1_temperature:spc_we4"
    start = now_us() - 600 * S
    await publish(runtime, "zone1_temperature", start, LEARN)
    assert svc.alarms.active(who) == []
    await publish(runtime, "zone1_temperature", start + 10 * S, DRIFT)
    svc.alarms.drop_cache()  # the annunciated list is shared for 0.2 s
    active = {a.key: a for a in svc.alarms.active(who)}
    assert set(active) == {key}
    a = active[key]
    assert (a.state, a.priority, a.type, a.tag) == ("unack_active", "medium", "spc", f"{M}/zone1_temperature")
    assert a.message == "zone1_temperature SPC: Western Electric rule 4"
    assert a.activated_us == start + 17 * S  # the 8th drift point
    journal = svc.alarms.journal(who)
    assert [(e.alarm, e.event, e.to_state) for e in journal] == [(key, "activate", "unack_active")]
    # back below the centre: the condition clears, the alarm returns to normal unacknowledged (ISA-18.2)
    await publish(runtime, "zone1_temperature", start + 18 * S, np.array([99.0]))
    assert runtime.alarm_engine.state_of(key) == "unack_active"  # held: clear_after 2 points
    await publish(runtime, "zone1_temperature", start + 19 * S, np.array([99.0]))
    assert runtime.alarm_engine.state_of(key) == "rtn_unack"
    await svc.alarms.acknowledge(who, [key], "seen the drift")
    assert runtime.alarm_engine.state_of(key) == "normal"


async def test_xbar_subgroups_across_batches(runtime: Runtime) -> None:
    """X-bar R, n = 4: 10 subgroups of 99, 101, 99, 101 (mean 100, R 2; A2(4) = 0.729: UCL 101.458), then one
    subgroup of mean 102 split over two batches: we1 at its last sample."""
    assert runtime.alarm_engine is not None
    start = now_us() - 600 * S
    await publish(runtime, "width", start, np.tile([99.0, 101.0, 99.0, 101.2], 10))
    key = f"{M}/width:spc_we1"
    await publish(runtime, "width", start + 40 * S, np.array([101.0, 103.0]))
    assert runtime.alarm_engine.state_of(key) == "normal"
    await publish(runtime, "width", start + 42 * S, np.array([101.0, 103.0]))
    assert runtime.alarm_engine.state_of(key) == "unack_active"
    view = runtime.alarm_engine.view(runtime.alarm_engine.info(key).index)
    assert view.activated_us == start + 43 * S


def test_the_demo_ovens_drift_raises_rule_1() -> None:
    """The simulated oven drifts zone 1 by +2 degC (8 sigma of its noise) from minute 20 of each hour for 5
    minutes: rule 1 activates at the drift's first sample, and the hold clears it 5 samples after it ends."""
    from plantlink.sim.kinds import Oven

    oven = Oven("o", np.random.default_rng(1))
    st = SpcStream(SpcSettings.model_validate({"chart": "imr", "rules": ["western_electric"], "alarm": ["we1"]}))
    assert st.rules == ("we1",)
    ts = np.arange(1800, dtype=np.int64)
    v = np.empty(ts.size)
    for k in ts.tolist():
        oven.step(1.0, float(k))
        v[k] = float(oven.values["zone1_temperature"])  # type: ignore[arg-type]
    assert np.ptp(v[1200:1500]) < 4 and v[1200:1500].mean() - v[600:1200].mean() == pytest.approx(2.0, abs=0.1)
    got = [(t.ts_us, t.active) for b in range(0, ts.size, 100) for t in st.feed(ts[b:b + 100] * S, v[b:b + 100])]
    assert (1200 * S, True) in got and (1504 * S, False) in got


async def test_an_active_rule_alarm_is_picked_up_after_a_restart(tmp_path: Path) -> None:
    """Active when the runtime stopped: restored active; once the new limits are learned, points without the
    pattern clear it (the stream starts from the saved condition, not from "normal")."""
    key = f"{M}/zone1_temperature:spc_we4"
    start = now_us() - 600 * S
    rt = Runtime(parse_plant(PLANT, "spc-live.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        await publish(rt, "zone1_temperature", start, LEARN)
        await publish(rt, "zone1_temperature", start + 10 * S, DRIFT)
        assert rt.alarm_engine is not None and rt.alarm_engine.state_of(key) == "unack_active"
    finally:
        await rt.stop()
    rt = Runtime(parse_plant(PLANT, "spc-live.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        assert rt.alarm_engine is not None and rt.alarm_engine.state_of(key) == "unack_active"
        await publish(rt, "zone1_temperature", start + 20 * S, np.concatenate([LEARN, [99.0, 101.0]]))
        assert rt.alarm_engine.state_of(key) == "rtn_unack"
    finally:
        await rt.stop()
