"""The alarm routes on a real FastAPI app (ASGI transport): roles per site, filters, actions with 4xx for what
does not apply, audit records, history, performance and failed notifications."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from plantlink.api.app import create_app
from plantlink.engines.alarms import AlarmEngine
from plantlink.engines.alarms.service import AlarmService
from plantlink.identity import Principal
from plantlink.samples import now_us
from plantlink.services import Components, Services
from plantlink.services.latest import LatestValues
from plantlink.store import Store, default_url
from plantlink.store.alarm_repo import AlarmStore
from tests.alarms.plants import GOOD, M2, M, S, batch, plant, tag_ids
from tests.slow import MAX_LAG_S, Slow, lag_during

USERS = {"op": Principal("op", {"s1": "operator", "s2": "viewer"}), "view": Principal("view", {"*": "viewer"})}
HIHI, HI, FORCE = f"{M}/temp:hihi", f"{M}/temp:hi", f"{M2}/force:hi"


class Audit:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, str, str, dict[str, Any]]] = []

    def record(self, kind: str, actor: str, site: str, target: str, details: Any) -> None:
        self.records.append((kind, actor, site, target, dict(details)))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, AlarmService, Audit]]:
    p = plant()
    ids = tag_ids(p)
    store = AlarmStore(Store.open(default_url(tmp_path)).engine)
    eng = AlarmEngine(p, store, tag_ids=ids)
    t = now_us()
    eng.feed(batch(ids, [(f"{M}/temp", t - 10 * S, 300.0, GOOD), (f"{M2}/force", t - 5 * S, 150.0, GOOD)]))
    eng.tick(t)
    audit = Audit()
    svc = AlarmService(eng, store, audit=audit)
    parts = Components(*(lambda: None for _ in range(8)))
    services = Services.build(p, ids, LatestValues(), dataclasses.replace(parts, alarms=lambda: svc))

    def users(app: FastAPI) -> None:
        @app.middleware("http")
        async def who(request: Request, call_next: Any) -> Any:
            name = request.headers.get("X-User")
            if name in USERS:
                request.state.principal = USERS[name]
            return await call_next(request)

    app = create_app(services, auth=users)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, svc, audit


async def test_list_filters_sorts_pages_and_needs_a_principal(api: Any) -> None:
    c, _, _ = api
    assert (await c.get("/api/v1/alarms")).status_code == 401
    r = (await c.get("/api/v1/alarms", headers={"X-User": "view"})).json()
    # temp 300: hihi (critical), hi (high, after 2 s), dev? no setpoint value; force 150: hi (medium)
    assert [i["key"] for i in r["items"]] == [HIHI, HI, FORCE] and r["total"] == 3
    r = (await c.get("/api/v1/alarms", params={"site": "s2"}, headers={"X-User": "view"})).json()
    assert [i["key"] for i in r["items"]] == [FORCE]
    r = (await c.get("/api/v1/alarms", params={"priority": "high", "limit": 1}, headers={"X-User": "view"})).json()
    assert [i["key"] for i in r["items"]] == [HI] and r["total"] == 1
    r = (await c.get("/api/v1/alarms", params={"sort": "-time", "limit": 1, "offset": 0},
                     headers={"X-User": "view"})).json()
    assert r["items"][0]["key"] == FORCE
    bad = await c.get("/api/v1/alarms", params={"state": "weird"}, headers={"X-User": "view"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"


async def test_acknowledge_many_with_roles_errors_and_audit(api: Any) -> None:
    c, _svc, audit = api
    r = await c.post("/api/v1/alarms/ack", json={"alarms": [HIHI]}, headers={"X-User": "view"})
    assert r.status_code == 403
    r = await c.post("/api/v1/alarms/ack", json={"alarms": [HIHI, FORCE]}, headers={"X-User": "op"})
    assert r.status_code == 403  # operator at s1 only
    r = await c.post("/api/v1/alarms/ack", json={"alarms": ["no/such:alarm"]}, headers={"X-User": "op"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await c.post("/api/v1/alarms/ack", json={"alarms": [HIHI, HI], "comment": "burner off"},
                     headers={"X-User": "op"})
    assert r.status_code == 200
    assert r.json()["acknowledged"] == [{"alarm": HIHI, "state": "ack_active"}, {"alarm": HI, "state": "ack_active"}]
    r = await c.post("/api/v1/alarms/ack", json={"alarms": [HIHI]}, headers={"X-User": "op"})
    assert r.status_code == 409 and "already acknowledged" in r.json()["error"]["message"]
    # every attempt is in the audit trail, the refused ones with their status (all or none: a refused request
    # names each alarm it asked for)
    assert [(k, a, s, t, d.get("status")) for k, a, s, t, d in audit.records] == [
        ("alarm.ack_refused", "view", "s1", HIHI, 403),
        ("alarm.ack_refused", "op", "s1", HIHI, 403), ("alarm.ack_refused", "op", "s2", FORCE, 403),
        ("alarm.ack_refused", "op", "", "no/such:alarm", 404),
        ("alarm.ack", "op", "s1", HIHI, None), ("alarm.ack", "op", "s1", HI, None),
        ("alarm.ack_refused", "op", "s1", HIHI, 409)]
    assert [d["comment"] for k, *_, d in audit.records if k == "alarm.ack"] == ["burner off", "burner off"]
    h = (await c.get("/api/v1/alarms/history", params={"alarm": HIHI}, headers={"X-User": "view"})).json()
    assert [(e["event"], e["actor"]) for e in h["items"]] == [("ack", "op"), ("activate", "system")]


async def test_shelve_unshelve_out_of_service(api: Any) -> None:
    c, svc, audit = api
    h = {"X-User": "op"}
    r = await c.post("/api/v1/alarms/shelve", json={"alarm": HIHI, "reason": "probe swap", "minutes": 30}, headers=h)
    assert r.status_code == 200 and svc.engine.state_of(HIHI) == "shelved"
    r = await c.post("/api/v1/alarms/shelve", json={"alarm": HIHI, "reason": "", "minutes": 30}, headers=h)
    assert r.status_code == 422
    listed = (await c.get("/api/v1/alarms", params={"state": "shelved"}, headers=h)).json()["items"]
    assert [(i["key"], i["shelve_reason"]) for i in listed] == [(HIHI, "probe swap")]
    r = await c.post("/api/v1/alarms/unshelve", json={"alarm": HIHI}, headers=h)
    assert r.json()["state"] == "unack_active"  # the condition is still there
    r = await c.post("/api/v1/alarms/unshelve", json={"alarm": HIHI}, headers=h)
    assert r.status_code == 409
    r = await c.post("/api/v1/alarms/out-of-service", json={"alarm": HI, "comment": "calibration"}, headers=h)
    assert r.json()["state"] == "out_of_service"
    r = await c.post("/api/v1/alarms/out-of-service", json={"alarm": HI, "out": False}, headers=h)
    assert r.json()["state"] == "unack_active"
    assert [k for k, *_ in audit.records] == ["alarm.shelve", "alarm.shelve_refused", "alarm.unshelve",
                                              "alarm.unshelve_refused", "alarm.out_of_service", "alarm.in_service"]
    invalid = audit.records[1]
    assert invalid[1] == "op" and invalid[4]["status"] == 422 and invalid[4]["field"] == "reason"
    r = await c.post("/api/v1/alarms/shelve", json={"alarm": FORCE, "reason": "x", "minutes": 5},
                     headers={"X-User": "view"})
    assert r.status_code == 403 and r.json()["error"]["field"] == "site"
    assert audit.records[-1][:4] == ("alarm.shelve_refused", "view", "s2", FORCE)
    assert svc.engine.state_of(FORCE) != "shelved"


async def test_performance_and_failed_notifications(api: Any) -> None:
    c, svc, _ = api
    svc.store.update_delivery(svc.store.add_delivery(HIHI, "s1", "teams", "webhook", "alarm", 1), "failed", 5, 2,
                              "ConnectError")
    svc.store.update_delivery(svc.store.add_delivery(FORCE, "s2", "teams", "webhook", "alarm", 1), "sent", 1, 2)
    r = (await c.get("/api/v1/alarms/notifications/failed", headers={"X-User": "view"})).json()
    assert [(d["alarm"], d["status"], d["last_error"]) for d in r["items"]] == [(HIHI, "failed", "ConnectError")]
    p = (await c.get("/api/v1/alarms/performance", headers={"X-User": "view"})).json()
    assert p["annunciations"] == 3 and p["periods"] == 144
    assert p["per_site"]["s1"]["annunciations"] == 2 and p["per_site"]["s2"]["annunciations"] == 1
    r = await c.get("/api/v1/alarms/performance", params={"start": "2026-01-02T00:00:00Z",
                                                          "end": "2026-01-01T00:00:00Z"}, headers={"X-User": "view"})
    assert r.status_code == 422


async def test_an_action_is_answered_after_its_audit_record_without_stalling_the_loop(api: Any) -> None:
    c, svc, audit = api
    svc.audit = slow = Slow(audit, "record")
    r, lag = await lag_during(c.post("/api/v1/alarms/ack", json={"alarms": [HIHI]}, headers={"X-User": "op"}))
    assert r.status_code == 200 and slow.calls == ["record"]
    assert audit.records[-1][:4] == ("alarm.ack", "op", "s1", HIHI)
    assert lag < MAX_LAG_S, f"the event loop stalled {lag:.2f} s during a slow audit append"
    r, lag = await lag_during(c.post("/api/v1/alarms/ack", json={"alarms": [HIHI]}, headers={"X-User": "op"}))
    assert r.status_code == 409 and audit.records[-1][0] == "alarm.ack_refused" and lag < MAX_LAG_S
