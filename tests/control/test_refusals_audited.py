"""Every refused control attempt is in the audit trail, whatever refused it: over a real server (the runtime's
own control service and hash-chained audit log), as a viewer, as an operator of another site, with a role too
low, an unknown tag, a body that does not validate; then through the HMI's data layer. Each refusal is read
back through ``GET /api/v1/audit`` as an admin, with its reason, the user and the target."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from plantlink.api.server import ServerHandle, serve
from plantlink.control.records import ControlRefused, Reason
from plantlink.identity import Principal
from tests.api.conftest import install_header_auth, principal_header
from tests.control.conftest import CONV1, OVEN, Rig

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = f"{CONV1}/speed_setpoint"
ZONE2 = f"{OVEN}/zone2_setpoint"  # engineer, critical


@pytest_asyncio.fixture(loop_scope="module")
async def server(rig: Rig) -> AsyncIterator[ServerHandle]:
    handle = await serve(rig.runtime, "127.0.0.1", 0, app_hook=install_header_auth)
    try:
        yield handle
    finally:
        await handle.stop()


class Api:
    def __init__(self, server: ServerHandle):
        self.url = server.url

    def as_(self, who: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, headers=principal_header(who))

    async def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        async with self.as_(who) as c:
            return await c.request(method, path, json=body)

    async def last_audit(self, actor: str, kind: str) -> dict[str, Any]:
        """The newest record of ``kind`` by ``actor``, read through the API as a global admin."""
        async with self.as_("root:*=admin") as c:
            r = await c.get("/api/v1/audit", params={"actor": actor, "kind": kind, "limit": 1})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items, f"no {kind} record by {actor}"
        return dict(items[0])


def error(r: httpx.Response) -> tuple[int, str]:
    body = r.json()["error"]
    return body["status"], body["code"]


async def staged_by(api: Api, rig: Rig, who: str, tag: str, step: float) -> tuple[str, float, float]:
    """A write of ``tag`` staged by ``who``, ``step`` away from the current value: (its id, current, target)."""
    cur = float(rig.sim.snapshot()[tag])  # type: ignore[arg-type]
    target = cur + step if cur + step <= 260 else cur - step
    r = await api.call(who, "POST", "/api/v1/control/stage", {"tag": tag, "value": target})
    assert r.status_code == 200 and r.json()["ok"], r.text
    return str(r.json()["id"]), cur, target


def marked(name: str) -> str:
    """A user name of its own per test run, so that each refusal finds its own record."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_stage_refused_before_judging_is_audited(server: ServerHandle, rig: Rig) -> None:
    api = Api(server)
    cases = [  # (who, roles, tag, value, (status, code), reason audited, site audited)
        ("viewer", "windsor=viewer", SPEED, 10, (403, "forbidden"), "role", "windsor"),
        ("detroit-op", "detroit=operator", SPEED, 10, (403, "forbidden"), "role", "windsor"),
        ("operator", "windsor=operator", f"{OVEN}/zone1_setpoint", 100, (403, "forbidden"), "role", "windsor"),
        ("viewer-nw", "windsor=viewer", f"{CONV1}/speed", 1, (403, "forbidden"), "role", "windsor"),
        ("operator-unknown", "windsor=operator", "windsor/nope/x", 1, (404, "unknown_tag"), "unknown_tag", None),
        ("operator-nw", "windsor=operator", f"{CONV1}/speed", 1, (409, "not_writable"), "not_writable", "windsor"),
        ("operator-type", "windsor=operator", SPEED, "fast", (422, "invalid_value"), "invalid_value", "windsor"),
    ]
    for name, roles, tag, value, answer, reason, site in cases:
        user = marked(name)
        r = await api.call(f"{user}:{roles}", "POST", "/api/v1/control/stage", {"tag": tag, "value": value})
        assert error(r) == answer, (name, r.text)
        rec = await api.last_audit(user, "control.stage_refused")
        assert (rec["actor"], rec["target"], rec["site"], rec["details"]["reason"]) == (user, tag, site, reason), name
    assert rig.runtime.control is not None and not rig.runtime.control.pending(Principal("x", {"*": "admin"}))


async def test_stage_body_that_does_not_validate_is_audited(server: ServerHandle) -> None:
    api = Api(server)
    for body in ({"tag": SPEED}, {"tag": SPEED, "value": [1, 2]}, {"value": 3}, "not json"):
        user = marked("operator-body")
        r = await api.call(f"{user}:windsor=operator", "POST", "/api/v1/control/stage", body)
        assert error(r) == (422, "invalid"), r.text
        rec = await api.last_audit(user, "control.stage_refused")
        assert rec["details"]["reason"] == "invalid_request" and rec["details"]["message"], rec


async def test_confirm_with_rights_lowered_or_from_another_site_is_audited(server: ServerHandle, rig: Rig) -> None:
    api = Api(server)
    zone1 = f"{OVEN}/zone1_setpoint"  # engineer
    user = marked("alice")
    staged_id, cur, target = await staged_by(api, rig, f"{user}:windsor=engineer", zone1, 2.5)
    # the same user, whose role was lowered to operator since staging: 403, and recorded
    r = await api.call(f"{user}:windsor=operator", "POST", "/api/v1/control/confirm",
                       {"staged_id": staged_id, "command_id": uuid.uuid4().hex})
    assert error(r) == (403, "forbidden"), r.text
    rec = await api.last_audit(user, "control.result")
    assert (rec["details"]["status"], rec["details"]["reason"], rec["target"]) == ("refused", "role", zone1)
    assert (await api.last_audit(user, "control.confirm"))["details"]["staged_id"] == staged_id
    assert rig.sim.snapshot()[zone1] == pytest.approx(cur) or cur == pytest.approx(target)  # nothing written
    # an operator of another site confirming it: refused as unknown (nothing leaks), and recorded
    other = marked("detroit-op")
    r = await api.call(f"{other}:detroit=operator", "POST", "/api/v1/control/confirm",
                       {"staged_id": staged_id, "command_id": uuid.uuid4().hex})
    assert r.status_code == 200 and r.json()["reason"] == "unknown_staged", r.text
    rec = await api.last_audit(other, "control.result")
    assert rec["details"]["status"] == "refused" and rec["details"]["reason"] in ("wrong_user", "unknown_staged")
    # a confirm body that does not validate
    bad = marked("operator-body")
    r = await api.call(f"{bad}:windsor=operator", "POST", "/api/v1/control/confirm", {"staged_id": staged_id})
    assert error(r) == (422, "invalid")
    rec = await api.last_audit(bad, "control.confirm_refused")
    assert rec["details"]["reason"] == "invalid_request"


async def test_approve_refusals_are_audited_without_leaking(server: ServerHandle, rig: Rig) -> None:
    api = Api(server)
    alice = marked("alice")
    staged_id, _, _ = await staged_by(api, rig, f"{alice}:windsor=engineer", ZONE2, 3)
    for name, roles, answer, reason in [
        ("viewer", "windsor=viewer", (404, "unknown_staged"), "role"),  # may not see it: answered as unknown
        ("detroit-eng", "detroit=engineer", (404, "unknown_staged"), "role"),
        ("operator", "windsor=operator", (403, "forbidden"), "role"),  # sees it, lacks the engineer role
        ("nobody", "windsor=engineer", (404, "unknown_staged"), "unknown_staged"),
    ]:
        user = marked(name)
        sid = staged_id if name != "nobody" else "no-such-id"
        r = await api.call(f"{user}:{roles}", "POST", "/api/v1/control/approve", {"staged_id": sid})
        assert error(r) == answer, (name, r.text)
        rec = await api.last_audit(user, "control.approve_refused")
        assert rec["details"]["reason"] == reason and rec["details"]["staged_id"] == sid, (name, rec)
    assert error(await api.call(f"{alice}:windsor=engineer", "POST", "/api/v1/control/approve",
                                {"staged_id": staged_id})) == (403, "self_approval")
    rec = await api.last_audit(alice, "control.approve_refused")
    assert rec["details"]["reason"] == "self_approval" and rec["target"] == ZONE2


async def test_site_switch_refusals_are_audited(server: ServerHandle) -> None:
    api = Api(server)
    op = marked("operator")
    r = await api.call(f"{op}:windsor=operator", "POST", "/api/v1/control/sites/windsor/disable")
    assert error(r) == (403, "forbidden")
    rec = await api.last_audit(op, "control.site_switch_refused")
    assert (rec["site"], rec["details"]["reason"], rec["details"]["enabled"]) == ("windsor", "role", False)
    admin = marked("admin")
    r = await api.call(f"{admin}:*=admin", "POST", "/api/v1/control/sites/atlantis/disable")
    assert error(r) == (404, "not_found")
    rec = await api.last_audit(admin, "control.site_switch_refused")
    assert rec["details"]["reason"] == "unknown_tag" and rec["details"]["site"] == "atlantis"


async def test_a_judged_refusal_is_audited_with_its_reasons(server: ServerHandle) -> None:
    """Limits, interlocks, staleness...: the stage answers 200 with ok false, recorded as control.stage."""
    api = Api(server)
    user = marked("operator")
    r = await api.call(f"{user}:windsor=operator", "POST", "/api/v1/control/stage", {"tag": SPEED, "value": 45})
    assert r.status_code == 200 and not r.json()["ok"]
    rec = await api.last_audit(user, "control.stage")
    assert rec["target"] == SPEED and not rec["details"]["ok"]
    assert "limit" in [x["reason"] for x in rec["details"]["refusals"]]


async def test_hmi_stage_refusal_is_audited(rig: Rig) -> None:
    """The HMI's stage (what its Stage button calls) refuses a viewer or another site's operator after the
    control service recorded it, like the API."""
    from plantlink.hmi import data

    audit = rig.runtime.audit
    assert audit is not None
    for roles in ({"windsor": "viewer"}, {"detroit": "operator"}):
        who = Principal(marked("hmi-user"), roles)  # type: ignore[arg-type]
        with pytest.raises(ControlRefused) as err:
            await data.stage(rig.runtime.services, who, f"{CONV1}/run_command", True)
        assert err.value.reason == Reason.ROLE
        (rec,) = list(audit.query(actor=who.name, kind="control.stage_refused"))
        assert (rec.target, rec.site, rec.details["reason"]) == (f"{CONV1}/run_command", "windsor", "role")
