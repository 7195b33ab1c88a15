"""Remaining useful life on a real Runtime: the simulated CNC's bearing history written into its historian,
the RUL engine's round (run in a worker thread, as its schedule does) writes ``<machine>/rul_hours`` and, below
the threshold, raises the ``rul_low`` alarm through the alarm engine; the API gives the failure dates in site
time. The truth is the failure the simulator reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from plantlink.api.app import create_app
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, numeric_batch
from plantlink.sim.kinds import BEARING_FAILURE, Cnc
from tests.api.conftest import install_header_auth, principal_header
from tests.waiting import wait_for

T0 = 1_767_225_600_000_000  # 2026-01-01 00:00 UTC
S, H = 1_000_000, 3_600_000_000
DT = 60
DAYS = 40
M = "windsor/a1/l1/cnc1"
PLANT = """
enterprise: Test
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
              - name: cnc1
                rul: {tags: [vibration, bearing_temperature], fault_tag: fault_code, failure_code: 31,
                      threshold_hours: 24, interval: 1h, history: 60d}
                tags:
                  - {name: vibration, source: {device: plc, address: 0, type: float32}}
                  - {name: bearing_temperature, source: {device: plc, address: 2, type: float32}}
                  - {name: fault_code, type: int, source: {device: plc, address: 4, type: uint16}}
"""


def simulate(rt: Runtime, seed: int = 3) -> list[int]:
    """The CNC for DAYS days into the runtime's historian (as tests/services/test_rul_service.py does);
    returns the bearing failures' instants."""
    assert rt.historian is not None
    wear = [rt.tag_ids[f"{M}/vibration"], rt.tag_ids[f"{M}/bearing_temperature"]]
    fault = rt.tag_ids[f"{M}/fault_code"]
    cnc = Cnc("cnc1", np.random.default_rng(seed))
    failures, prev = [], -1
    for day in range(DAYS):
        ts, vals = [], []
        for k in range(86400 // DT):
            t = day * 86400 + k * DT
            cnc.step(DT, t)
            t_us = T0 + (t + DT) * S
            ts.append(t_us)
            vals.append((cnc.values["vibration"], cnc.values["bearing_temperature"]))
            code = int(cnc.values["fault_code"])  # type: ignore[call-overload]
            if code != prev:
                rt.historian.write(numeric_batch([fault], t_us, [code], int(Quality.GOOD)))
                if code == BEARING_FAILURE:
                    failures.append(t_us)
                prev = code
        v = np.asarray(vals)
        rt.historian.write(numeric_batch(np.repeat(wear, len(ts)), np.tile(ts, 2),
                                         np.concatenate([v[:, 0], v[:, 1]]), int(Quality.GOOD)))
    rt.historian.flush()
    return failures


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(PLANT, "rul.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.mark.timeout(300)
async def test_rul_below_threshold_raises_its_alarm(runtime: Runtime) -> None:
    failures = await asyncio.to_thread(simulate, runtime)
    assert len(failures) >= 4
    rul, alarms = runtime.rul, runtime.alarm_engine
    assert rul is not None and alarms is not None
    key = f"{M}/rul_hours:rul_low"
    app = create_app(runtime, auth=install_header_auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=principal_header("ann:windsor=viewer")) as api:
        # 80 hours before the last failure: well above the threshold (24 h), no alarm
        early = (failures[-1] // H - 80) * H
        await asyncio.to_thread(rul.run_once, early)
        body = (await api.get(f"/api/v1/rul/{M}")).json()
        assert body["problem"] is None, body
        est = body["estimate"]
        truth = (failures[-1] - early) / H
        assert abs(est["hours"] - truth) <= 0.3 * truth + 6  # the service's own tolerance (test_rul_service)
        assert est["lower_hours"] <= est["hours"] <= est["upper_hours"] and est["since_us"] == failures[-2]
        assert all(d.endswith("-05:00") for d in est["failure"])  # site time: Toronto in winter
        assert alarms.state_of(key) == "normal"
        # 3 hours before it: below the threshold, the alarm is raised (handed to the event loop)
        late = (failures[-1] // H - 3) * H
        await asyncio.to_thread(rul.run_once, late)
        await wait_for(lambda: alarms.state_of(key) == "unack_active", what="the RUL alarm")
        view = alarms.view(alarms.info(key).index)
        assert (view.activated_us, view.priority, view.type) == (late, "high", "rul")
        svc = runtime.services
        assert svc is not None
        who = Principal("ann", {"windsor": "viewer"})

        def stored() -> object:
            s = svc.history.raw(who, f"{M}/rul_hours", early, late + 1)
            return s.table.num_rows == 2 and s

        series = await wait_for(stored, what="the RUL samples in the historian")
        assert float(series.table.column("value")[1].as_py()) < 24


async def test_too_few_failures_is_a_visible_problem(runtime: Runtime) -> None:
    assert runtime.rul is not None
    await asyncio.to_thread(runtime.rul.run_once, T0 + 10 * H)
    app = create_app(runtime, auth=install_header_auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=principal_header("ann:windsor=viewer")) as api:
        body = (await api.get(f"/api/v1/rul/{M}")).json()
    assert body["estimate"] is None and "0 failure(s) (code 31)" in body["problem"] and "cnc1" in body["problem"]
