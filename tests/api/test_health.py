"""GET /api/v1/health: each device's connector, the recorder, the write-ahead log, the historian and the notifier,
ok or degraded with the reasons; 200 in both cases; the devices of the caller's sites only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantlink.api.app import create_app
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services.health import Health, HealthSources
from tests.api.conftest import install_header_auth, principal_header
from tests.servers import ModbusTestServer
from tests.waiting import wait_for

PLANT = """
enterprise: Test Co
devices:
  plc: {{protocol: modbus, host: 127.0.0.1, port: {live}, poll: 200ms, timeout: 500ms,
         reconnect_min: 100ms, reconnect_max: 500ms}}
  dead: {{protocol: modbus, host: 127.0.0.1, port: {dead}, poll: 200ms, timeout: 300ms,
          reconnect_min: 100ms, reconnect_max: 500ms}}
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
                  - {{name: temp, unit: degC, source: {{device: plc, address: 0, type: float32}}}}
  - name: detroit
    timezone: America/Detroit
    areas:
      - name: d1
        lines:
          - name: l2
            machines:
              - name: m3
                tags:
                  - {{name: temp, unit: degC, source: {{device: dead, address: 0, type: float32}}}}
"""


@pytest.fixture
async def get(free_port: Callable[[], int], tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    server = ModbusTestServer(free_port())
    await server.start()
    rt = Runtime(parse_plant(PLANT.format(live=server.port, dead=free_port()), "health.yaml"), tmp_path / "data",
                 flush_interval=0.2)
    await rt.start()
    app = create_app(rt, auth=install_header_auth)
    made: list[httpx.AsyncClient] = []

    async def call(spec: str) -> httpx.Response:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                              headers=principal_header(spec) if spec else {})
        made.append(c)
        return await c.get("/api/v1/health")

    try:
        yield call
    finally:
        for c in made:
            await c.aclose()
        await app.state.live.stop()
        await rt.stop()
        await server.stop()


async def _connected(get: Callable[[str], Any]) -> dict[str, Any]:
    async def plc_up() -> dict[str, Any] | None:
        body: dict[str, Any] = (await get("admin:*=admin")).json()
        return body if any(d["device"] == "plc" and d["status"] == "connected" for d in body["devices"]) else None

    found: dict[str, Any] = await wait_for(plc_up, what="plc connected")
    return found


async def test_a_dead_device_makes_the_report_degraded_with_its_reason(get: Callable[[str], Any]) -> None:
    body = await _connected(get)
    assert body["status"] == "degraded"
    dead = next(d for d in body["devices"] if d["device"] == "dead")
    assert dead["status"] != "connected" and dead["sites"] == ["detroit"]
    assert any(r.startswith("device dead is ") for r in body["reasons"]), body["reasons"]
    plc = next(d for d in body["devices"] if d["device"] == "plc")
    assert plc["protocol"] == "modbus" and plc["samples"] >= 0 and {"errors", "reconnects"} <= set(plc)
    assert {"queued", "written", "retries", "failed", "waiting"} <= set(body["recorder"])
    assert body["wal"]["enabled"] is True and "write_errors" in body["wal"]
    assert body["historian"]["errors"] == 0
    assert body["notifier"] is None  # no notifications configured


async def test_a_caller_sees_and_is_judged_on_the_devices_of_their_sites(get: Callable[[str], Any]) -> None:
    await _connected(get)
    r = await get("ann:windsor=viewer")
    assert r.status_code == 200
    body = r.json()
    assert [d["device"] for d in body["devices"]] == ["plc"]
    assert body["status"] == "ok" and body["reasons"] == []
    detroit = (await get("dan:detroit=operator")).json()
    assert [d["device"] for d in detroit["devices"]] == ["dead"] and detroit["status"] == "degraded"


async def test_health_needs_a_caller_with_a_site(get: Callable[[str], Any]) -> None:
    assert (await get("")).status_code == 401
    r = await get("nobody:elsewhere=admin")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def _health(**sources: Any) -> Health:
    return Health(["windsor"], {"plc": ["windsor"]}, HealthSources(**sources))


def test_recorder_wal_historian_and_notifier_troubles_are_reasons() -> None:
    who = Principal("ann", {"windsor": "viewer"})
    assert _health().report(who).status == "ok"
    recorder = {"failed": 2, "over_capacity": 0, "oldest_age_s": 12.5, "last_error": "disk I/O error"}
    report = _health(recorder=lambda: recorder, wal=lambda: {"enabled": True, "full": True, "write_errors": 1,
                                                            "last_error": "ENOSPC", "delivery_held": True,
                                                            "held_batches": 120, "held_bytes": 3 * 2**20},
                     historian=lambda: {"errors": 3, "last_error": "locked"},
                     notifier=lambda: {"dropped": 4}).report(who)
    assert report.status == "degraded"
    assert report.reasons == (
        "recorder: 2 events could not be written (set aside in the dead-letter file)",
        "recorder: the oldest waiting event is 12.5 s old (last error: disk I/O error)",
        "write-ahead log is full: new samples are refused",
        "write-ahead log: 1 write errors (last: ENOSPC)",
        "write-ahead log: delivery held on disk, 120 batches (3.0 MiB) behind (the historian is catching up)",
        "historian: 3 errors (last: locked)",
        "notifier: 4 notifications dropped (its queue was full)",
    )



async def test_samples_the_historian_refused_are_a_reason(free_port: Callable[[], int], tmp_path: Path) -> None:
    """A batch through the real ingest path (log, bus, historian writer) with a good sample, one of a tag id
    nobody registered and one dated before 1970: the good one is stored, the others counted and named."""
    rt = Runtime(parse_plant(PLANT.format(live=free_port(), dead=free_port()), "health.yaml"), tmp_path / "data",
                 flush_interval=0.2)
    await rt.start()
    try:
        temp = rt.tag_ids["windsor/a1/l1/m1/temp"]
        assert rt.services is not None
        health = rt.services.health
        admin = Principal("ada", {"*": "admin"})
        assert health.report(admin).historian["refused"] == {}  # type: ignore[index]
        rt.ingest(numeric_batch([temp, 999_999, temp], [now_us(), now_us(), -1_000_000], [21.5, 1.0, 2.0],
                                Quality.GOOD))

        async def refused() -> dict[str, int] | None:
            got: dict[str, int] = health.report(admin).historian["refused"]  # type: ignore[index]
            return got or None

        assert await wait_for(refused, what="the refusals counted") == {"before_1970": 1, "unknown_tag": 1}
        reasons = health.report(admin).reasons
        assert "historian: samples refused since start: 1 dated before 1970, 1 for an unknown tag" in reasons
        await wait_for(lambda: _stored(rt, temp), what="the good sample stored")
    finally:
        await rt.stop()


async def _stored(rt: Runtime, tag: int) -> bool | None:
    assert rt.historian is not None
    return 21.5 in rt.historian.raw(tag, 0, now_us() + 1).column("value").to_pylist() or None
