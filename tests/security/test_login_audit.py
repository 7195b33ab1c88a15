"""Logins (lockout, no secrets in answers or logs) and the audit API (filters, pages, CSV, verify, tampering)
on the served application."""

from __future__ import annotations

import csv
import io
import logging
import secrets
from typing import Any

import pytest
import sqlalchemy as sa

from plantlink.auth import AuthService
from plantlink.store import default_url
from plantlink.store.auth_tables import audit_log
from tests.security.conftest import W_ALARM, Served, Users


def _login(served: Served, user: str, password: str, address: str) -> tuple[int, dict[str, str]]:
    with served.client(local_address=address) as c:
        r = c.post("/api/v1/auth/login", json={"user": user, "password": password})
        return r.status_code, dict(r.headers)


@pytest.mark.parametrize(("user", "address"), [("t-brute", "127.0.0.2"), ("no-such-user", "127.0.0.3")])
def test_brute_force_backs_the_pair_off(served: Served, user: str, address: str) -> None:
    """Five failures block the (name, address) pair (known name or not: the answers are alike), even with the
    right password; the same name from another address is not locked (an attacker cannot lock it)."""
    for _ in range(5):
        assert _login(served, user, "wrong-password", address)[0] == 401
    status, headers = _login(served, user, served.passwords.get(user, "x"), address)
    assert status == 429 and 0 < int(headers["retry-after"]) <= 900
    status, _ = _login(served, user, served.passwords.get(user, "x"), "127.0.0.4")  # from elsewhere: not locked
    assert status == (200 if user in served.passwords else 401)


def test_brute_force_from_one_address_slows_the_address(served: Served) -> None:
    for i in range(20):
        assert _login(served, f"spray-{i}", "password-spray", "127.0.0.5")[0] == 401
    status, headers = _login(served, "t-windsor-viewer", served.passwords["t-windsor-viewer"], "127.0.0.5")
    assert status == 429 and 0 < int(headers["retry-after"]) <= 5  # slowed for seconds, not locked
    assert _login(served, "t-windsor-viewer", served.passwords["t-windsor-viewer"], "127.0.0.6")[0] == 200


def test_no_secret_in_answers_or_logs(served: Served, users: Users, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = AuthService.open(served.data_dir)
    try:
        token = auth.create_token("t-windsor-engineer", "log test", None, actor="test").secret
    finally:
        auth.close()
    with served.client() as c:
        login = c.post("/api/v1/auth/login", json={"user": "t-windsor-engineer",
                                                   "password": served.passwords["t-windsor-engineer"]})
        assert login.status_code == 200
        session, csrf = login.cookies["plantlink_session"], login.json()["csrf_token"]
        me = c.get("/api/v1/auth/me")
        assert c.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"}).status_code == 200
    wrong = f"wrong-{secrets.token_hex(6)}"
    with served.client(local_address="127.0.0.7") as c:
        assert c.post("/api/v1/auth/login", json={"user": "t-windsor-engineer", "password": wrong}).status_code == 401
    for body in (login.text, me.text):
        assert session not in body and served.passwords["t-windsor-engineer"] not in body
        assert "$argon2" not in body and "hash" not in body.lower()
    assert set(me.json()) == {"user", "kind", "roles", "csrf_token"}
    secret_part = token.split("_", 2)[2]
    ours = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("plantlink"))
    logs = served.log_text() + ours  # the server's whole log (DEBUG) and this process's plantlink loggers
    assert "logged in" in served.log_text()  # the log is really captured
    for value in (served.passwords["t-windsor-engineer"], wrong, session, csrf, secret_part):
        assert value not in logs
    audit = users.login("admin").get("/api/v1/audit", params={"limit": 1000}).text
    for value in (served.passwords["t-windsor-engineer"], wrong, session, csrf, secret_part):
        assert value not in audit
    for user in AuthService.open(served.data_dir).users():  # the user listing carries no hash
        assert not any("argon2" in str(v) for v in vars(user).values())


def _records(served: Served, users: Users, **params: Any) -> list[dict[str, Any]]:
    r = users.login("admin").get("/api/v1/audit", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_audit_list_filters_pages_and_site_admins(served: Served, users: Users) -> None:
    op = users.login("t-windsor-operator")
    assert op.post("/api/v1/alarms/shelve", json={"alarm": W_ALARM, "reason": "audit", "minutes": 1}).status_code == 200
    assert op.post("/api/v1/alarms/unshelve", json={"alarm": W_ALARM}).status_code == 200
    mine = _records(served, users, actor="t-windsor-operator", kind="alarm.")
    assert [r["kind"] for r in mine[:2]] == ["alarm.unshelve", "alarm.shelve"]  # newest first
    assert all(str(r["kind"]).startswith("alarm.") for r in mine)
    # actions done are at the operator's site; refused attempts (other tests try other sites' alarms and unknown
    # keys) are recorded too, at the alarm's site or, for an alarm that does not exist, at none
    assert all(r["site"] == "windsor" for r in mine if not str(r["kind"]).endswith("_refused"))
    assert all(r["site"] in ("windsor", "detroit", "") for r in mine)
    assert all(r["kind"] == "auth.login" for r in _records(served, users, kind="auth.login"))
    everything = _records(served, users, limit=1000)
    ids = [r["id"] for r in everything]
    assert ids == sorted(ids, reverse=True)
    page1 = users.login("admin").get("/api/v1/audit", params={"limit": 3}).json()
    page2 = users.login("admin").get("/api/v1/audit", params={"limit": 3, "offset": page1["next_offset"]}).json()
    assert [r["id"] for r in page1["items"] + page2["items"]] == [r["id"] for r in
                                                                   _records(served, users, limit=6)]
    assert users.login("admin").get("/api/v1/audit", params={"limit": 1001}).status_code == 422
    w_admin = users.login("t-windsor-admin")
    site_rows = w_admin.get("/api/v1/audit", params={"site": "windsor", "limit": 1000}).json()["items"]
    assert site_rows and all(r["site"] == "windsor" for r in site_rows)
    for params in ({}, {"site": "detroit"}):
        r = w_admin.get("/api/v1/audit", params=params)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert w_admin.get("/api/v1/audit/verify").status_code == 403
    r = users.login("admin").get("/api/v1/audit", params={"start": "2030-01-01T00:00:00Z",
                                                          "end": "2029-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "end"


def test_audit_csv_export_is_streamed_and_formula_safe(served: Served, users: Users) -> None:
    evil = "=cmd|' /c calc'!a0"
    with served.client(local_address="127.0.0.8") as c:
        assert c.post("/api/v1/auth/login", json={"user": evil, "password": "x"}).status_code == 401
    r = users.login("admin").get("/api/v1/audit/export.csv", params={"kind": "auth.login_failed"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["id", "time_utc", "kind", "actor"]
    actors = [row[3] for row in rows[1:]]
    assert "'" + evil in actors and evil not in actors
    assert all(row[2] == "auth.login_failed" for row in rows[1:])
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids)  # oldest first
    exported = _records(served, users, kind="audit.exported")
    assert exported and exported[0]["actor"] == "admin"  # the export itself is audited


def test_audit_verify_finds_a_row_edited_in_the_database(served: Served, users: Users) -> None:
    admin = users.login("admin")
    op = users.login("t-windsor-operator")
    assert op.post("/api/v1/alarms/shelve", json={"alarm": W_ALARM, "reason": "chain", "minutes": 1}).status_code == 200
    assert op.post("/api/v1/alarms/unshelve", json={"alarm": W_ALARM}).status_code == 200
    ok = admin.get("/api/v1/audit/verify").json()
    assert ok["ok"] is True and ok["first_bad_id"] is None and ok["checked"] > 10
    target = _records(served, users, actor="t-windsor-operator", kind="alarm.shelve")[0]
    engine = sa.create_engine(default_url(served.data_dir))
    try:
        with engine.begin() as c:
            c.execute(audit_log.update().where(audit_log.c.id == target["id"]).values(actor="mallory"))
        bad = admin.get("/api/v1/audit/verify").json()
        assert bad["ok"] is False and bad["first_bad_id"] == target["id"], bad
        with engine.begin() as c:  # put it back: the chain is whole again
            c.execute(audit_log.update().where(audit_log.c.id == target["id"]).values(actor=target["actor"]))
    finally:
        engine.dispose()
    assert admin.get("/api/v1/audit/verify").json()["ok"] is True
