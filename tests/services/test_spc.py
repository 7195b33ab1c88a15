"""SpcService on a real Runtime (historian, plant index): samples published on the bus, charts computed from
the historian's raw reads, answers known by hand (limits from Montgomery's printed factors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from plantlink.errors import AccessDenied, AnalysisError, NotFound, QueryError
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import settle

PLANT = """
enterprise: Test Co
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}
sites:
  - name: windsor
    timezone: America/Toronto
    areas:
      - name: a1
        lines:
          - name: l1
            machines:
              - name: m1
                tags:
                  - name: height
                    unit: mm
                    source: {device: plc, address: 0, type: float32}
                    spc: {chart: xbar_r, subgroup: {size: 5}, lsl: 11.9, usl: 12.2, target: 12.0}
                  - name: width
                    source: {device: plc, address: 2, type: float32}
                    spc: {chart: xbar_s, subgroup: {every: 1m}, rules: [nelson]}
                  - name: depth
                    source: {device: plc, address: 4, type: float32}
                    spc: {chart: xbar_s, subgroup: {part_counter: parts}}
                  - {name: parts, type: int, source: {device: plc, address: 6, type: uint32}}
                  - {name: temp, source: {device: plc, address: 8, type: float32}}
                  - name: scrap
                    type: int
                    source: {device: plc, address: 10, type: uint16}
                    spc: {chart: p, sample_size: 50, usl: 5}  # limits of a count: no capability
                  - {name: recipe, type: string, source: {device: plc, address: 12, type: string, length: 4}}
  - name: detroit
    timezone: America/Detroit
    areas:
      - name: d1
        lines:
          - name: l2
            machines:
              - name: m3
                tags:
                  - {name: temp, source: {device: plc, address: 20, type: float32}}
"""
M = "windsor/a1/l1/m1"
ADMIN = Principal("admin", {"*": "admin"})
ANN = Principal("ann", {"windsor": "viewer"})
DAN = Principal("dan", {"detroit": "viewer"})
S = 1_000_000
#: Ten subgroups of five: nine centred on 12.0, the tenth on 12.1, each 12 +- (0.02, 0.01, 0): R = 0.04.
HEIGHT = np.concatenate([b + np.array([-0.02, -0.01, 0.0, 0.01, 0.02]) for b in [12.0] * 9 + [12.1]])


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(PLANT, "spc-plant.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


def t0() -> int:
    return (now_us() - 3 * 3600 * S) // (60 * S) * (60 * S)  # on a minute boundary, 3 hours ago


async def publish(rt: Runtime, tag: str, ts: np.ndarray, values: np.ndarray, quality: int | np.ndarray = 192
                  ) -> None:
    rt.bus.publish(numeric_batch(np.full(ts.size, rt.tag_ids[f"{M}/{tag}"]), ts, values, quality))
    await settle(rt)


async def published_height(rt: Runtime) -> int:
    start = t0()
    await publish(rt, "height", start + np.arange(HEIGHT.size) * S, HEIGHT)
    return start


async def test_xbar_r_limits_rules_and_capability_by_hand(runtime: Runtime) -> None:
    """X = 12.01, R = 0.04; A2(5) = 0.577, D4(5) = 2.114, d2(5) = 2.326: UCL 12.0331, LCL 11.9869; point 9
    (12.1) is beyond (we1); points 0..8 sit 1.3 sigma_xbar below the centre: 4 of 5 beyond 1 sigma from
    point 3 on (we3; the first points count as a shorter window), 8 in a row below at points 7 and 8 (we4)."""
    start = await published_height(runtime)
    c = runtime.services.spc.chart(ANN, f"{M}/height", start, start + 3600 * S)
    x, r = c.charts.charts
    assert c.kind == "xbar_r" and c.samples == 50 and c.ts_us.tolist() == [start + (5 * i + 4) * S for i in range(10)]
    assert x.center[0] == pytest.approx(12.01) and r.center[0] == pytest.approx(0.04)
    assert x.ucl[0] == pytest.approx(12.01 + 0.577 * 0.04, abs=1e-4)
    assert x.lcl[0] == pytest.approx(12.01 - 0.577 * 0.04, abs=1e-4)
    assert r.ucl[0] == pytest.approx(2.114 * 0.04, abs=1e-4)
    got = {(v.chart, v.rule, v.point) for v in c.violations}
    want = {("xbar", "we1", 9), ("xbar", "we4", 7), ("xbar", "we4", 8)} | {("xbar", "we3", p) for p in range(3, 9)}
    assert got == want
    v9 = next(v for v in c.violations if v.rule == "we1")
    assert v9.ts_us == start + 49 * S and v9.value == pytest.approx(12.1)
    # capability: sigma_within = 0.04 / 2.326; overall s of the 50 values
    cap = c.capability
    assert cap is not None
    sw, s = 0.04 / 2.326, float(np.std(HEIGHT, ddof=1))
    assert cap.sigma_within == pytest.approx(sw, rel=2e-4)
    assert cap.cp == pytest.approx(0.3 / (6 * sw), rel=2e-4)
    assert cap.cpk == pytest.approx((12.01 - 11.9) / (3 * sw), rel=2e-4)  # nearer to the lower limit
    assert cap.ppk == pytest.approx((12.01 - 11.9) / (3 * s), rel=1e-6)


async def test_overrides_a_tag_without_settings_and_bad_quality(runtime: Runtime) -> None:
    """temp has no spc block: individuals by default. x = 10, 12, 11, ... 16: MR = 14/9, X = 13, UCL =
    13 + 2.660 * 14/9 (E2 from d2 = 1.128); a bad-quality sample is left out."""
    start = t0()
    x = np.array([10, 12, 11, 13, 12, 14, 13, 15, 14, 16, 99], dtype=np.float64)
    q = np.array([192] * 10 + [0])
    await publish(runtime, "temp", start + np.arange(11) * S, x, q)
    c = runtime.services.spc.chart(ANN, f"{M}/temp", start, start + 3600 * S)
    i_chart, mr = c.charts.charts
    assert c.kind == "imr" and c.samples == 10 and c.capability is None
    assert i_chart.ucl[0] == pytest.approx(13 + 2.660 * 14 / 9, abs=3e-3)  # 2.660 is printed rounded
    assert mr.ucl[0] == pytest.approx(3.267 * 14 / 9, abs=2e-3)
    assert c.violations == ()
    # override: an X-bar S chart of subgroups of 2 (5 subgroups), and EWMA
    c2 = runtime.services.spc.chart(ANN, f"{M}/temp", start, start + 3600 * S, chart="xbar_s", subgroup_size=2)
    assert c2.charts.charts[0].values.tolist() == [11, 12, 13, 14, 15]
    c3 = runtime.services.spc.chart(ANN, f"{M}/temp", start, start + 3600 * S, chart="ewma")
    assert c3.charts.charts[0].name == "ewma" and c3.charts.charts[0].values[0] == pytest.approx(0.2 * 10 + 0.8 * 13)
    with pytest.raises(AnalysisError, match="needs a subgroup size"):
        runtime.services.spc.chart(ANN, f"{M}/temp", start, start + 3600 * S, chart="xbar_r")
    with pytest.raises(AnalysisError, match="no specification limits"):
        runtime.services.spc.chart(ANN, f"{M}/temp", start, start + 3600 * S, with_capability=True)
    with pytest.raises(QueryError, match="unknown chart"):
        runtime.services.spc.chart(ANN, f"{M}/temp", start, start + 3600 * S, chart="pie")


async def test_time_bucket_and_part_counter_subgroups(runtime: Runtime) -> None:
    start = t0()
    ts = start + np.arange(30) * 10 * S  # every 10 s: 6 per minute, 5 minutes
    v = np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 5) + np.repeat(np.arange(5.0), 6)
    await publish(runtime, "width", ts, v)
    c = runtime.services.spc.chart(ANN, f"{M}/width", start, start + 3600 * S)
    assert c.charts.sizes.tolist() == [6] * 5
    assert c.charts.charts[0].values.tolist() == pytest.approx([3.5, 4.5, 5.5, 6.5, 7.5])
    assert c.ts_us.tolist() == [start + (60 * i + 50) * S for i in range(5)]
    assert c.rules == ("n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8")
    # part counter: it steps every 4 samples (written half a second before each part's first sample)
    await publish(runtime, "parts", start + np.arange(0, 24, 4) * S - S // 2, np.arange(6.0))
    await publish(runtime, "depth", start + np.arange(24) * S, np.tile([1.0, 2.0, 2.0, 3.0], 6) + np.repeat(
        np.arange(6.0), 4))
    c = runtime.services.spc.chart(ANN, f"{M}/depth", start, start + 3600 * S)
    assert c.charts.sizes.tolist() == [4] * 6
    assert c.charts.charts[0].values.tolist() == pytest.approx([2.0, 3.0, 4.0, 5.0, 6.0, 7.0])


async def test_p_chart_from_counts(runtime: Runtime) -> None:
    start = t0()
    d = np.array([1, 2, 0, 3, 1, 2, 1, 0, 2, 8], dtype=np.float64)  # p = 20 / 500 = 0.04
    await publish(runtime, "scrap", start + np.arange(10) * S, d)
    c = runtime.services.spc.chart(ANN, f"{M}/scrap", start, start + 3600 * S)
    (p,) = c.charts.charts
    ucl = 0.04 + 3 * np.sqrt(0.04 * 0.96 / 50)  # 0.1231: 8 / 50 = 0.16 is beyond
    assert p.center[0] == pytest.approx(0.04) and p.ucl[0] == pytest.approx(ucl)
    assert [(v.rule, v.point) for v in c.violations] == [("we1", 9)] and c.capability is None
    with pytest.raises(AnalysisError, match="not to p or u"):
        runtime.services.spc.chart(ANN, f"{M}/scrap", start, start + 3600 * S, with_capability=True)


async def test_errors_name_the_tag_and_period_and_access_is_checked(runtime: Runtime) -> None:
    start = await published_height(runtime)
    svc = runtime.services.spc
    with pytest.raises(AnalysisError) as info:
        svc.chart(ANN, f"{M}/height", start - 7200 * S, start - 3600 * S)
    assert str(info.value).startswith(f"tag {M}/height over [") and "no samples" in str(info.value)
    assert info.value.status == 400
    with pytest.raises(AnalysisError, match="2 subgroups, at least 5"):
        svc.chart(ANN, f"{M}/height", start, start + 10 * S)
    with pytest.raises(AnalysisError, match="numeric tags"):
        svc.chart(ANN, f"{M}/recipe", start, start + 10 * S)
    with pytest.raises(NotFound):
        svc.chart(ANN, f"{M}/nope", start, start + 3600 * S)
    with pytest.raises(AccessDenied):
        svc.chart(DAN, f"{M}/height", start, start + 3600 * S)
    with pytest.raises(NotFound):
        svc.chart(DAN, runtime.tag_ids[f"{M}/height"], start, start + 3600 * S)
    with pytest.raises(QueryError):
        svc.chart(ADMIN, f"{M}/height", start, start - S)
    assert svc.chart(ANN, runtime.tag_ids[f"{M}/height"], start, start + 3600 * S).samples == 50
