"""Writes answered by a request leave the event loop: a store or audit log that takes a second per write (a
test double around the real one) does not stall the loop that serves the live stream; the answer still comes
after the write."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from plantlink.api.app import create_app
from plantlink.control.service import ControlService
from plantlink.control.wiring import ControlWiring
from plantlink.runtime import Runtime
from plantlink.samples import now_us
from plantlink.services import services_of
from plantlink.services.control import Control
from tests.api.conftest import install_header_auth, principal_header
from tests.slow import MAX_LAG_S, Slow, lag_during


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                             headers=principal_header("olga:*=admin"))


async def test_a_refused_request_is_audited_off_the_loop(runtime: Runtime) -> None:
    assert runtime.audit is not None
    audit = Slow(runtime.audit, "record")
    control = ControlService(ControlWiring.of(runtime), audit)
    svc = services_of(runtime)
    app = create_app(dataclasses.replace(svc, control=Control(svc.plant, lambda: control)), auth=install_header_auth)
    async with _client(app) as c:
        r, lag = await lag_during(c.post("/api/v1/control/stage", json={"tag": ""}))
    assert r.status_code == 422 and audit.calls == ["record"]  # answered once written
    assert lag < MAX_LAG_S, f"the event loop stalled {lag:.2f} s during a slow audit append"
    assert [x.kind for x in runtime.audit.query(kind="control.stage_refused")], "not recorded"


async def test_a_downtime_reason_is_written_off_the_loop(runtime: Runtime) -> None:
    assert runtime.store is not None and runtime.downtime is not None
    t0 = now_us() - 600_000_000
    ev = runtime.store.open_event("windsor/a1/l1/m1", "windsor/a1/l1", "windsor", t0, "faulted", None)
    runtime.store.close_event(ev, t0 + 60_000_000, "faulted", micro=False)
    slow = Slow(runtime.downtime.store, "set_reason")
    runtime.downtime.store = slow  # type: ignore[assignment]
    app = create_app(runtime, auth=install_header_auth)
    async with _client(app) as c:
        r, lag = await lag_during(c.put(f"/api/v1/downtime/{ev}/reason", json={"reason": "Jam"}))
    assert r.status_code == 200 and r.json()["reason"] == "Jam" and slow.calls == ["set_reason"]
    assert lag < MAX_LAG_S, f"the event loop stalled {lag:.2f} s during a slow reason write"
