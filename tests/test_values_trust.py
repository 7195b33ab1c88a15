"""Values that control trusts, end to end on real servers and the real app (issue 8, items 3 and 4).

An OPC UA server on loopback publishes a value stamped 2099-01-01, then normal values, then +Inf, -Inf, NaN
and a null; a Modbus server on loopback answers reads with another function code. Through the connectors,
the bus, the historian, the REST API on a real uvicorn server and the control service:

* a timestamp too far ahead of plantlink's clock is replaced by the arrival time and flagged (uncertain,
  counted in the device's health); the latest value moves on with the next sample; the control path
  refuses to stage against the flagged value (interlock and current value) and works again after;
* non-finite and null values are stored bad and served as ``value: null`` with a ``reason``, in valid
  JSON, never a 500; an interlock on such a value fails closed;
* a reply with another function code is bad quality and counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import ua

from plantlink.api.server import ServerHandle, serve
from plantlink.control.records import Reason
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import now_us, numeric_batch
from tests.api.conftest import install_header_auth, principal_header, strict_json
from tests.servers import OpcUaTestServer, RawModbusServer
from tests.waiting import wait_for

PLANT = """
enterprise: Test
devices:
  ua: {{protocol: opcua, endpoint: "opc.tcp://127.0.0.1:{ua}/test/", security: none, sampling_interval: 50ms,
        publishing_interval: 50ms, watchdog_interval: 300ms, reconnect_min: 200ms, reconnect_max: 1s}}
  plc: {{protocol: modbus, host: 127.0.0.1, port: {mb}, poll: 100ms, timeout: 500ms,
         reconnect_min: 100ms, reconnect_max: 500ms}}
sites:
  - name: windsor
    timezone: UTC
    areas:
      - name: paint
        lines:
          - name: l1
            machines:
              - name: oven
                tags:
                  - {{name: zone1, unit: degC, source: {{device: ua, node: "ns=2;s=Zone1"}}}}
                  - {{name: flow, unit: l/min, source: {{device: ua, node: "ns=2;s=Flow"}}}}
                  - name: setpoint
                    unit: degC
                    writable: true
                    source: {{device: ua, node: "ns=2;s=Setpoint"}}
                    control: {{min: 0, max: 300, max_step: 20, interlocks: ["zone1 < 250", "flow > 5"]}}
              - name: press
                tags:
                  - {{name: tonnage, unit: t, source: {{device: plc, address: 0}}}}
"""
OVEN = "windsor/paint/l1/oven"
ZONE1, FLOW, SETPOINT, TONNAGE = f"{OVEN}/zone1", f"{OVEN}/flow", f"{OVEN}/setpoint", "windsor/paint/l1/press/tonnage"
FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
ENGINEER = Principal("erin", {"windsor": "engineer"})



def around_now() -> dict[str, str]:
    """From an hour ago to a day ahead (the raw history range is at most 31 days)."""
    now = time.time()
    return {"start": datetime.fromtimestamp(now - 3600, UTC).isoformat(),
            "end": datetime.fromtimestamp(now + 86400, UTC).isoformat()}


class Rig:
    def __init__(self, rt: Runtime, api: ServerHandle, ua_srv: OpcUaTestServer, mb: RawModbusServer):
        self.rt, self.api, self.ua, self.mb = rt, api, ua_srv, mb
        self.http = httpx.AsyncClient(base_url=api.url, headers=principal_header("admin:*=admin"), timeout=10)

    async def values(self, *paths: str) -> dict[str, dict[str, Any]]:
        """``/api/v1/values`` for ``paths``: asserts a 200 with valid JSON; rows by tag path."""
        r = await self.http.get("/api/v1/values", params=[("tag", p) for p in paths])
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return {row["tag"]: row for row in strict_json(r.text)["values"]}

    def health(self, device: str) -> dict[str, Any]:
        return dict(self.rt.status()["connectors"][device])


@pytest.fixture
async def rig(free_port: Callable[[], int], tmp_path: Path) -> AsyncIterator[Rig]:
    ua_srv = OpcUaTestServer(free_port(), {"Zone1": (180.0, ua.VariantType.Double),
                                           "Flow": (12.0, ua.VariantType.Double),
                                           "Setpoint": (100.0, ua.VariantType.Double)})
    mb = RawModbusServer(free_port(), [1234] * 8, mode="wrong_function")
    await ua_srv.start()
    await mb.start()
    rt = Runtime(parse_plant(PLANT.format(ua=ua_srv.port, mb=mb.port), "trust.yaml"), tmp_path, flush_interval=0.2)
    await rt.start()
    api = await serve(rt, "127.0.0.1", 0, app_hook=install_header_auth)
    rig = Rig(rt, api, ua_srv, mb)
    try:
        await wait_for(lambda: rt.connectors["ua"].health.ok, what="OPC UA connected")
        for name, value in (("Zone1", 180.0), ("Flow", 12.0), ("Setpoint", 100.0)):
            await ua_srv.set(name, value)
        yield rig
    finally:
        await rig.http.aclose()
        await api.stop()
        await rt.stop()
        await ua_srv.stop()
        await mb.stop()


async def _row_is(rig: Rig, path: str, value: float, quality: str = "good") -> dict[str, Any] | None:
    row = (await rig.values(path))[path]
    return row if row.get("value") == value and row["quality"] == quality else None


async def first_values(rig: Rig) -> None:
    """Wait for the OPC UA tags' first values; the baseline: a write passes every check."""
    for path, value in ((ZONE1, 180.0), (SETPOINT, 100.0), (FLOW, 12.0)):
        await wait_for(lambda p=path, v=value: _row_is(rig, p, v), what=f"first value of {path}")
    assert rig.rt.control is not None and rig.rt.control.stage(ENGINEER, SETPOINT, 110.0).ok


async def test_future_timestamp_is_flagged_and_never_freezes_the_latest_value(rig: Rig) -> None:
    rt = rig.rt
    assert rt.control is not None
    await first_values(rig)

    # One sample each stamped 2099-01-01: kept, but at its arrival time and uncertain, and counted
    before = time.time()
    await rig.ua.set("Zone1", 200.0, FUTURE)
    await rig.ua.set("Setpoint", 40.0, FUTURE)
    zone = await wait_for(lambda: _row_is(rig, ZONE1, 200.0, "uncertain"), what="the 2099 sample, flagged")
    await wait_for(lambda: _row_is(rig, SETPOINT, 40.0, "uncertain"), what="the 2099 setpoint, flagged")
    assert before - 1 <= zone["ts_ms"] / 1000 <= time.time() + 1  # the arrival time, not 2099
    health = rig.health("ua")
    assert health["future_timestamps"] == 2
    assert health["last_future_timestamp"] == FUTURE.timestamp()

    # The control path does not trust a flagged value: neither in an interlock nor as the current value
    staged = rt.control.stage(ENGINEER, SETPOINT, 50.0)
    reasons = {r.reason: r.message for r in staged.refusals}
    assert not staged.ok and Reason.INTERLOCK in reasons and Reason.STALE_VALUE in reasons
    assert "zone1" in reasons[Reason.INTERLOCK] and "uncertain" in reasons[Reason.INTERLOCK]
    assert "uncertain" in reasons[Reason.STALE_VALUE]

    # Normal values again: the latest value moves on (the 2099 stamp did not freeze it)
    await rig.ua.set("Zone1", 190.0)
    await rig.ua.set("Setpoint", 100.0)
    zone = await wait_for(lambda: _row_is(rig, ZONE1, 190.0), what="the next normal zone1 value")
    await wait_for(lambda: _row_is(rig, SETPOINT, 100.0), what="the next normal setpoint value")
    assert zone["ts_ms"] / 1000 <= time.time() + 1
    staged = rt.control.stage(ENGINEER, SETPOINT, 115.0)  # the step is judged from 100, not from a frozen 40
    assert staged.ok, staged.refusals
    assert rig.health("ua")["future_timestamps"] == 2

    # History has every sample, the flagged one at its arrival time
    assert rt.writer is not None
    await rt.writer.flush()
    r = await rig.http.get("/api/v1/history/raw", params={"tag": ZONE1, **around_now()})
    assert r.status_code == 200, r.text[:300]
    raw = strict_json(r.text)
    pairs = list(zip(raw["value"], raw["quality"], strict=True))
    assert (200.0, "uncertain") in pairs and (190.0, "good") in pairs
    assert max(raw["ts_ms"]) / 1000 <= time.time() + 1


async def test_non_finite_and_null_values_are_bad_json_valid_and_fail_interlocks(rig: Rig) -> None:
    rt = rig.rt
    assert rt.control is not None
    await first_values(rig)

    for value, reason in ((float("inf"), "+inf"), (float("-inf"), "-inf"), (float("nan"), "nan"), (None, "null")):
        await rig.ua.set("Flow", value)

        async def served(reason: str = reason) -> dict[str, Any] | None:
            rows = await rig.values(FLOW, ZONE1)  # a 200 with valid JSON, for the bad tag and the good one
            assert rows[ZONE1]["value"] == 180.0 and rows[ZONE1]["quality"] == "good"
            row = rows[FLOW]
            return row if row.get("reason") == reason else None

        row = await wait_for(served, what=f"flow {reason} served")
        assert row["value"] is None and row["quality"] == "bad", row
        staged = rt.control.stage(ENGINEER, SETPOINT, 110.0)  # "flow > 5" must not hold on +inf (nor on the rest)
        reasons = {r.reason: r.message for r in staged.refusals}
        assert not staged.ok and "flow" in reasons.get(Reason.INTERLOCK, ""), (reason, staged.refusals)
        assert "quality is bad" in reasons[Reason.INTERLOCK]
        json.dumps(staged.to_dict(), allow_nan=False)  # what the control API answers is JSON too

    assert rig.health("ua")["bad_values"] == 4
    await rig.ua.set("Flow", 12.0)
    await wait_for(lambda: _row_is(rig, FLOW, 12.0), what="flow back to a number")
    assert rt.control.stage(ENGINEER, SETPOINT, 110.0).ok

    assert rt.writer is not None
    await rt.writer.flush()
    r = await rig.http.get("/api/v1/history/raw", params={"tag": FLOW, **around_now()})
    assert r.status_code == 200, r.text[:300]
    raw = strict_json(r.text)
    bad = [(v, q, why) for v, q, why in zip(raw["value"], raw["quality"], raw["reason"], strict=True) if why]
    assert bad == [(None, "bad", "+inf"), (None, "bad", "-inf"), (None, "bad", "nan"), (None, "bad", "null")]


async def test_modbus_reply_with_another_function_code_is_bad_and_counted(rig: Rig) -> None:
    await wait_for(lambda: rig.mb.requests >= 3, what="the device asked three times")

    async def stored() -> dict[str, Any] | None:
        row = (await rig.values(TONNAGE))[TONNAGE]
        return row if row["ts"] is not None else None

    row = await wait_for(stored, what="a tonnage sample stored")
    assert row["quality"] == "bad" and row["value"] is None, row
    await wait_for(lambda: rig.health("plc")["invalid_replies"] >= 3, what="wrong replies counted")
    assert "function code 4" in (rig.health("plc")["last_error"] or "")
    assert rig.mb.requests >= 3

    rig.mb.mode = "exception"
    seen = rig.health("plc")["exception_replies"]
    await wait_for(lambda: rig.health("plc")["exception_replies"] >= seen + 3, what="exception replies counted")
    assert (await rig.values(TONNAGE))[TONNAGE]["quality"] == "bad"

    rig.mb.mode = "ok"  # the same server answering correctly: the value is good (the server speaks Modbus)
    await wait_for(lambda: _row_is(rig, TONNAGE, 1234.0), what="a correct reply stored good")
    invalid = rig.health("plc")["invalid_replies"]
    await asyncio.sleep(0.5)
    assert rig.health("plc")["invalid_replies"] == invalid


async def test_values_that_bypass_the_connector_checks_are_still_not_trusted(rig: Rig) -> None:
    """A sample that reached the bus without a connector's check (a third-party plugin, a replay): +Inf and a
    2099 stamp, both called good. The API still answers valid JSON; the control path still refuses."""
    rt = rig.rt
    assert rt.control is not None
    await first_values(rig)
    ids = rt.tag_ids
    future_us = int(FUTURE.timestamp() * 1e6)
    rt.bus.publish(numeric_batch([ids[FLOW], ids[ZONE1]], [now_us(), future_us], [float("inf"), 200.0], 192))
    await wait_for(lambda: _row_is(rig, ZONE1, 200.0), what="the unchecked 2099 sample")
    flow = (await rig.values(FLOW))[FLOW]
    assert flow["value"] is None and flow["reason"] == "+inf"
    staged = rt.control.stage(ENGINEER, SETPOINT, 110.0)
    message = {r.reason: r.message for r in staged.refusals}.get(Reason.INTERLOCK, "")
    assert not staged.ok and "ahead of this server's clock" in message and "not a number" in message, staged
