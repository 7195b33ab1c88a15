"""An apply hands the engines their new definitions at once (issue 13 item 4): machine states (a machine kept
goes on in its open interval, the same start), OEE with the new ideal cycle time for the period after the
apply, downtime reasons, SPC settings; a removed machine's interval is closed, an added one starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services import services_of
from tests.plants import plant_yaml
from tests.waiting import wait_for

L = "s1/a1/l1/"
ERIN = Principal("erin", {"*": "engineer"})
OLD_PRI, NEW_PRI = 0.02, 0.005
MACHINES = f"""
- name: m
  states: {{state_tag: st}}
  production: {{produced: count, good: count, ideal_cycle_time: {OLD_PRI}}}
  tags:
    - {{name: st, type: int, source: {{device: plc, address: 0}}}}
    - {{name: count, type: int, source: {{device: plc, address: 1}}}}
- name: n
  states: {{state_tag: st, window: 30}}
  tags:
    - {{name: st, type: int, source: {{device: plc, address: 2}}}}
- name: k
  states: {{state_tag: st}}
  tags:
    - {{name: st, type: int, source: {{device: plc, address: 3}}}}
    - {{name: x, source: {{device: plc, address: 4}}, spc: {{chart: imr, alarm: true, learn: 10}}}}
    - {{name: y, source: {{device: plc, address: 5}}, spc: {{chart: imr, alarm: true, learn: 10}}}}
- name: gone
  states: {{state_tag: st}}
  tags:
    - {{name: st, type: int, source: {{device: plc, address: 6}}}}
"""
BEFORE = plant_yaml(devices="plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}",
                    machines=MACHINES).replace(
    "          - name: l1\n", "          - name: l1\n"
    "            downtime: {reasons: [{name: mech, reasons: [jam]}]}\n")
AFTER = (BEFORE
         .replace(f"ideal_cycle_time: {OLD_PRI}", f"ideal_cycle_time: {NEW_PRI}")  # m: OEE
         .replace("{state_tag: st, window: 30}", "{state_tag: st, window: 30, state_map: {1: idle}}")
         .replace("reasons: [jam]", "reasons: [jam, belt]")
         .replace("x, source: {device: plc, address: 4}, spc: {chart: imr, alarm: true, learn: 10}",
                  "x, source: {device: plc, address: 4}, spc: {chart: imr, alarm: true, learn: 12}")
         .replace("name: gone", "name: new"))


def test_the_models_differ_as_meant() -> None:
    before, after = dict(parse_plant(BEFORE).machines()), dict(parse_plant(AFTER).machines())
    assert before[L + "m"].production.ideal_cycle_time == OLD_PRI  # type: ignore[union-attr]
    assert after[L + "m"].production.ideal_cycle_time == NEW_PRI  # type: ignore[union-attr]
    assert after[L + "n"].states.state_map == {1: "idle"}  # type: ignore[union-attr]
    assert after[L + "k"].states == before[L + "k"].states and L + "new" in after and L + "gone" not in after


def ids(rt: Runtime, *names: str) -> list[int]:
    return [rt.tag_ids[L + n] for n in names]


async def test_engines_take_the_new_definitions_and_kept_machines_go_on(tmp_path: Path) -> None:
    rt = Runtime(parse_plant(BEFORE), tmp_path / "data", flush_interval=0.1)
    await rt.start()
    try:
        assert rt.states is not None and rt.spc is not None and rt.store is not None
        t0 = now_us()
        # every machine running (code 1 of STATES)
        rt.ingest(numeric_batch(ids(rt, "m/st", "n/st", "k/st", "gone/st"), t0, [1, 1, 1, 1], Quality.GOOD))
        await wait_for(lambda: all(rt.states.current().get(L + p, ("",))[0] == "running"  # type: ignore[union-attr]
                                   for p in ("m", "n", "k", "gone")), 30, "every machine running")
        before = rt.states.current()
        # SPC: x and y learn their limits from 10 points
        xs = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 10.2, 9.8, 10.1, 9.9]
        for i, v in enumerate(xs):
            rt.ingest(numeric_batch(ids(rt, "k/x", "k/y"), t0 + i, [v, v], Quality.GOOD))
        x_id, y_id = ids(rt, "k/x", "k/y")
        await wait_for(lambda: rt.spc.streams[x_id][1].limits is not None  # type: ignore[union-attr]
                       and rt.spc.streams[y_id][1].limits is not None, 30, "SPC limits learned")  # type: ignore[union-attr]
        y_stream = rt.spc.streams[y_id][1]
        assert rt.downtime.reasons(L.rstrip("/")) == {"mech": ["jam"]}  # type: ignore[union-attr]

        t_apply = now_us()
        done = await services_of(rt).model.apply(ERIN, AFTER, allow_history_loss=True)  # gone/st
        assert done.applied
        after = rt.states.current()
        # kept machines go on in the same interval: the same state since the same instant
        assert after[L + "k"] == before[L + "k"]
        assert after[L + "m"] == before[L + "m"]  # its production changed, not its state rules
        # n: its state_tag value 1 now means idle, from the apply on
        assert after[L + "n"][0] == "idle" and after[L + "n"][1] >= t_apply
        # gone: closed ("stop"); new: started (no input yet: unknown)
        assert L + "gone" not in after and after[L + "new"][0] == "unknown"

        def stored() -> dict[str, list]:  # type: ignore[type-arg]
            out: dict[str, list] = {}  # type: ignore[type-arg]
            for iv in rt.store.intervals(t0 - 1, now_us() + 1):  # type: ignore[union-attr]
                out.setdefault(iv.machine, []).append(iv)
            return out

        def settled(s: dict[str, list]) -> bool:  # type: ignore[type-arg]
            return ([iv.state for iv in s.get(L + "n", [])][-2:] == ["running", "idle"] and L + "new" in s
                    and s.get(L + "gone", [None])[-1].end_us is not None)

        ivs = await wait_for(lambda: settled(s := stored()) and s, 30, "the intervals recorded")
        # (each machine began unknown at start, before its first input)
        still_open = {iv.machine: (iv.state, iv.start_us) for iv in rt.store.open_intervals()}
        assert still_open[L + "k"] == ("running", before[L + "k"][1])  # the interval from before the apply
        assert L + "gone" not in still_open
        assert [(iv.state, iv.end_reason) for iv in ivs[L + "gone"]][-1] == ("running", "stop")
        assert ivs[L + "gone"][-1].end_us >= t_apply
        assert ivs[L + "n"][-1].start_us == ivs[L + "n"][-2].end_us == after[L + "n"][1]

        # downtime: n's stop (idle since the apply) takes the reason the new model added
        ev = await wait_for(lambda: [e for e in rt.store.open_events() if e.machine == L + "n"], 30,  # type: ignore[union-attr]
                            "n's downtime event")
        assert rt.downtime.reasons(L.rstrip("/")) == {"mech": ["jam", "belt"]}  # type: ignore[union-attr]
        got = services_of(rt).downtime.assign_reason(ERIN, ev[0].id, "belt")
        assert (got.reason_group, got.reason) == ("mech", "belt")

        # SPC: x's settings changed: it learns again (12 points); y's did not: its chart goes on
        assert rt.spc.streams[x_id][1].limits is None and rt.spc.streams[x_id][1].settings.learn == 12
        assert rt.spc.streams[y_id][1] is y_stream and y_stream.limits is not None

        # OEE of m for a period after the apply, with the new ideal cycle time: counter samples every 50 ms
        a = now_us()
        counts = [100 + 5 * k for k in range(11)]
        for k, v in enumerate(counts):
            rt.ingest(numeric_batch(ids(rt, "m/count"), a + k * 50_000, [v], Quality.GOOD))
        lo, hi = a + 25_000, a + 425_000  # samples k = 1..8 inside: 8 steps of 5 parts
        pq, apt_s = 8 * 5, (hi - lo) / 1e6  # running the whole window (since before the apply)
        services = services_of(rt)
        rep = await wait_for(lambda: (r := services.kpi.oee(ERIN, L + "m", lo, hi, now=hi + 1)).total.parts == pq
                             and r, 30, "m's OEE after the apply")
        res = rep.total.result
        assert rep.total.inputs.pq == pq
        assert res.effectiveness == pytest.approx(NEW_PRI * pq / apt_s)  # 0.5; with the old one it would be 2.0
        assert res.availability == pytest.approx(1.0)
    finally:
        await rt.stop()
