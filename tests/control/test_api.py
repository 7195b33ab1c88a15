"""The control routes on the app from ``create_app``, against the simulated plant: a write staged and
confirmed over HTTP changes the machine; rights, envelopes, retries and the site switch."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
import pytest_asyncio

from plantlink.api.app import create_app
from plantlink.audit.sink import MemoryAudit
from plantlink.control.service import ControlService
from plantlink.control.wiring import ControlWiring
from plantlink.identity import Principal
from plantlink.services import services_of
from plantlink.services.control import Control
from tests.control.conftest import CONV1, CONV2, OVEN, Rig
from tests.slow import MAX_LAG_S, Slow, lag_during
from tests.waiting import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = f"{CONV1}/speed_setpoint"
HEADER = "x-control-test-principal"


class HeaderAuth:
    """Test stand-in for the auth middleware: ``name:site=role,...`` in a header becomes the principal."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        for key, value in scope.get("headers", []):
            if key.decode("latin-1") == HEADER:
                name, _, roles = value.decode().partition(":")
                pairs = dict(r.split("=", 1) for r in roles.split(",") if r)
                scope.setdefault("state", {})["principal"] = Principal(name, pairs)  # type: ignore[arg-type]
        await self.app(scope, receive, send)


Client = Callable[[str | None], httpx.AsyncClient]


@pytest_asyncio.fixture(loop_scope="module")
async def api(rig: Rig) -> AsyncIterator[tuple[Client, MemoryAudit]]:
    audit = MemoryAudit()
    control = ControlService(ControlWiring.of(rig.runtime), audit)
    running = services_of(rig.runtime)
    services = dataclasses.replace(running, control=Control(running.plant, lambda: control))
    app = create_app(services, auth=lambda a: a.add_middleware(HeaderAuth))
    made: list[httpx.AsyncClient] = []

    def client(who: str | None) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                              headers={HEADER: who} if who else {})
        made.append(c)
        return c

    yield client, audit
    for c in made:
        await c.aclose()
    await app.state.live.stop()


def error(r: httpx.Response) -> tuple[int, str]:
    body = r.json()["error"]
    return body["status"], body["code"]


async def test_stage_and_confirm_over_http_change_the_machine(rig: Rig, api: tuple[Client, MemoryAudit]) -> None:
    client, audit = api
    oscar = client("oscar:windsor=operator")
    cur = float(rig.sim.snapshot()[SPEED])  # type: ignore[arg-type]
    target = round(cur + 4.44 if cur + 4.44 <= 40 else cur - 4.44, 2)
    r = await oscar.post("/api/v1/control/stage", json={"tag": SPEED, "value": target})
    assert r.status_code == 200, r.text
    staged = r.json()
    assert staged["ok"] and staged["new"] == target and staged["refusal"] is None
    assert [i["ok"] for i in staged["interlocks"]] == [True, True]
    pend = (await oscar.get("/api/v1/control/pending")).json()
    assert [p["id"] for p in pend] == [staged["id"]]
    cmd = uuid.uuid4().hex
    first = await oscar.post("/api/v1/control/confirm", json={"staged_id": staged["id"], "command_id": cmd})
    assert first.status_code == 200 and first.json()["status"] == "applied", first.text
    retry = await oscar.post("/api/v1/control/confirm", json={"staged_id": staged["id"], "command_id": cmd})
    assert retry.json() == first.json()
    assert audit.kinds().count("control.execute") == 1
    await wait_for(lambda: rig.sim.snapshot()[SPEED] == pytest.approx(target), 3, "conveyor setpoint")


async def test_refusals_and_envelopes(api: tuple[Client, MemoryAudit]) -> None:
    client, _ = api
    oscar = client("oscar:windsor=operator")
    r = await client(None).post("/api/v1/control/stage", json={"tag": SPEED, "value": 1})
    assert error(r) == (401, "unauthenticated")
    r = await client("vera:windsor=viewer").post("/api/v1/control/stage", json={"tag": SPEED, "value": 1})
    assert error(r) == (403, "forbidden")
    r = await oscar.post("/api/v1/control/stage", json={"tag": f"{OVEN}/zone1_setpoint", "value": 100})
    assert error(r) == (403, "forbidden")  # engineer tag
    r = await oscar.post("/api/v1/control/stage", json={"tag": "nope/x", "value": 1})
    assert error(r) == (404, "unknown_tag")
    r = await oscar.post("/api/v1/control/stage", json={"tag": f"{CONV1}/speed", "value": 1})
    assert error(r) == (409, "not_writable")
    r = await oscar.post("/api/v1/control/stage", json={"tag": SPEED, "value": "fast"})
    assert error(r) == (422, "invalid_value") and r.json()["error"]["field"] == "value"
    r = await oscar.post("/api/v1/control/stage", json={"tag": SPEED})
    assert error(r) == (422, "invalid")
    r = await oscar.post("/api/v1/control/stage", json={"tag": f"{CONV2}/speed_setpoint", "value": 5})
    assert r.status_code == 200 and not r.json()["ok"]
    assert r.json()["refusal"]["reason"] == "interlock" and r.json()["interlocks"][0]["expression"] == "state == 99"
    r = await oscar.post("/api/v1/control/confirm", json={"staged_id": r.json()["id"], "command_id": "c1"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["reason"]) == ("refused", "unknown_staged")
    r = await oscar.post("/api/v1/control/approve", json={"staged_id": "nope"})
    assert error(r) == (404, "unknown_staged")


async def test_two_person_rule_over_http(rig: Rig, api: tuple[Client, MemoryAudit]) -> None:
    client, _ = api
    alice, carol = client("alice:windsor=engineer"), client("carol:windsor=engineer")
    path = f"{OVEN}/zone2_setpoint"
    cur = float(rig.sim.snapshot()[path])  # type: ignore[arg-type]
    target = cur + 7 if cur + 7 <= 260 else cur - 7
    staged = (await alice.post("/api/v1/control/stage", json={"tag": path, "value": target})).json()
    assert staged["needs_approval"]
    r = await alice.post("/api/v1/control/approve", json={"staged_id": staged["id"]})
    assert error(r) == (403, "self_approval")
    r = await client("oscar:windsor=operator").post("/api/v1/control/approve", json={"staged_id": staged["id"]})
    assert error(r) == (403, "forbidden")
    r = await carol.post("/api/v1/control/approve", json={"staged_id": staged["id"]})
    assert r.status_code == 200 and r.json()["approved_by"] == "carol"
    r = await alice.post("/api/v1/control/confirm", json={"staged_id": staged["id"], "command_id": "two-1"})
    assert r.json()["status"] == "applied", r.text


async def test_site_switch_is_admin_only(api: tuple[Client, MemoryAudit]) -> None:
    client, audit = api
    admin, oscar = client("adam:*=admin"), client("oscar:windsor=operator")
    assert error(await oscar.post("/api/v1/control/sites/windsor/disable")) == (403, "forbidden")
    assert error(await admin.post("/api/v1/control/sites/atlantis/disable")) == (404, "not_found")
    try:
        r = await admin.post("/api/v1/control/sites/windsor/disable", json={"note": "die change"})
        assert r.json() == {"site": "windsor", "control_enabled": False}
        sites = (await oscar.get("/api/v1/control/sites")).json()
        assert sites == [{"site": "windsor", "control_enabled": False}]
        r = await oscar.post("/api/v1/control/stage", json={"tag": SPEED, "value": 10})
        assert r.json()["refusal"]["reason"] == "control_disabled"
    finally:
        r = await admin.post("/api/v1/control/sites/windsor/enable")
    assert r.json() == {"site": "windsor", "control_enabled": True}
    notes = [e.details.get("note") for e in audit.entries if e.kind == "control.site_disabled"]
    assert notes == ["die change"]


async def test_refusals_name_the_argument_at_fault(api: tuple[Client, MemoryAudit]) -> None:
    """The envelope of each refusal outright: status, code and field, as before the one error handler."""
    client, _ = api
    oscar = client("oscar:windsor=operator")

    def envelope(r: httpx.Response) -> tuple[int, str, str | None]:
        body = r.json()["error"]
        assert body["status"] == r.status_code
        return body["status"], body["code"], body.get("field")

    stage = "/api/v1/control/stage"
    assert envelope(await oscar.post(stage, json={"tag": "nope/x", "value": 1})) == (404, "unknown_tag", "tag")
    assert envelope(await oscar.post(stage, json={"tag": f"{CONV1}/speed", "value": 1})) == (
        409, "not_writable", "tag")
    assert envelope(await oscar.post(stage, json={"tag": f"{OVEN}/zone1_setpoint", "value": 100})) == (
        403, "forbidden", "site")
    assert envelope(await oscar.post(stage, json={"tag": SPEED, "value": "fast"})) == (
        422, "invalid_value", "value")
    r = await oscar.post("/api/v1/control/approve", json={"staged_id": "nope"})
    assert envelope(r) == (404, "unknown_staged", "staged_id")
    r = await client("ada:*=admin").post("/api/v1/control/sites/atlantis/disable")
    assert envelope(r) == (404, "not_found", "site")
    r = await oscar.post("/api/v1/control/sites/windsor/disable")
    assert envelope(r) == (403, "forbidden", "site")


async def test_stage_and_confirm_wait_for_their_audit_records_off_the_event_loop(rig: Rig) -> None:
    audit = MemoryAudit()
    slow = Slow(audit, "record")
    control = ControlService(ControlWiring.of(rig.runtime), slow)
    running = services_of(rig.runtime)
    app = create_app(dataclasses.replace(running, control=Control(running.plant, lambda: control)),
                     auth=lambda a: a.add_middleware(HeaderAuth))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={HEADER: "otto:windsor=operator"}) as otto:
        cur = float(rig.sim.snapshot()[SPEED])  # type: ignore[arg-type]
        target = round(cur + 3.33 if cur + 3.33 <= 40 else cur - 3.33, 2)
        r, lag_stage = await lag_during(otto.post("/api/v1/control/stage", json={"tag": SPEED, "value": target}))
        staged = r.json()
        assert staged["ok"] and audit.kinds() == ["control.stage"], staged
        body = {"staged_id": staged["id"], "command_id": uuid.uuid4().hex}
        r, lag = await lag_during(otto.post("/api/v1/control/confirm", json=body))
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    assert audit.kinds()[-3:] == ["control.confirm", "control.execute", "control.result"]  # written before
    worst = max(lag, lag_stage)
    assert worst < MAX_LAG_S, f"the event loop stalled {worst:.2f} s during slow audit appends"
