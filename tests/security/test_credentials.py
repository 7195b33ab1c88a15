"""API tokens and CSRF on the served application. Tokens are made with an ``AuthService`` in this process on
the server's own database (as ``plantlink users token create`` does)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from plantlink.auth import AuthService, InvalidRequest
from tests.security.conftest import W_ALARM, Served, Users

SHELVE = {"alarm": W_ALARM, "reason": "csrf test", "minutes": 1}


@pytest.fixture(scope="module")
def auth(served: Served) -> Iterator[AuthService]:
    svc = AuthService.open(served.data_dir)
    yield svc
    svc.close()


def _me(served: Served, bearer: str) -> int:
    with served.client() as c:
        return c.get("/api/v1/auth/me", headers={"authorization": f"Bearer {bearer}"}).status_code


def test_a_valid_token_works_and_is_exempt_from_csrf(served: Served, auth: AuthService) -> None:
    tok = auth.create_token("t-windsor-operator", "ci", None, actor="test")
    with served.client(headers={"authorization": f"Bearer {tok.secret}"}) as c:
        me = c.get("/api/v1/auth/me").json()
        assert (me["user"], me["kind"], me["roles"]) == ("t-windsor-operator", "token", {"windsor": "operator"})
        assert "csrf_token" not in me
        r = c.post("/api/v1/alarms/shelve", json=SHELVE)  # no X-CSRF-Token: a bearer needs none
        assert r.status_code == 200, r.text
        assert c.post("/api/v1/alarms/unshelve", json={"alarm": W_ALARM}).status_code == 200


def test_missing_expired_forged_garbled_revoked_and_disabled_tokens_are_refused(served: Served,
                                                                                auth: AuthService) -> None:
    good = auth.create_token("t-windsor-viewer", "good", None, actor="test")
    token_id = good.info.id
    past = AuthService.open(served.data_dir, clock=lambda: time.time() - 3 * 86400)
    try:
        expired = past.create_token("t-windsor-viewer", "old", None, actor="test", days=1).secret
    finally:
        past.close()
    revoked = auth.create_token("t-windsor-viewer", "revoked", None, actor="test")
    auth.revoke_token(revoked.info.id, actor="test")
    of_disabled = auth.create_token("t-disable", "disabled", None, actor="test")
    assert _me(served, of_disabled.secret) == 200
    auth.set_disabled("t-disable", True, actor="test")
    bad = {
        "expired": expired,
        "forged (real id, random secret)": f"plk_{token_id}_{secrets.token_urlsafe(32)}",
        "forged (random id and secret)": f"plk_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}",
        "prefix only": "plk_",
        "no secret": f"plk_{token_id}_",
        "wrong prefix": good.secret.replace("plk_", "pkl_", 1),
        "truncated": good.secret[:-1],
        "very long": good.secret + "A" * 5000,
        "sql": "plk_' OR '1'='1",
        "revoked": revoked.secret,
        "of a disabled user": of_disabled.secret,
    }
    assert _me(served, good.secret) == 200
    for what, value in bad.items():
        with served.client() as c:
            r = c.get("/api/v1/hierarchy", headers={"authorization": f"Bearer {value}"})
            assert r.status_code == 401, what
            assert r.json()["error"]["code"] == "invalid_token", what
    with served.client() as c:
        for header in ("Bearer", "Basic dXNlcjpwYXNz", "bearer  x", f"Token {good.secret}", good.secret):
            r = c.get("/api/v1/hierarchy", headers={"authorization": header})
            assert r.status_code == 401, header
        assert c.get("/api/v1/hierarchy").status_code == 401  # none at all


def test_a_token_never_exceeds_its_creator_or_its_user(served: Served, auth: AuthService) -> None:
    with pytest.raises(InvalidRequest, match="exceeds what the user holds"):
        auth.create_token("t-windsor-operator", "wider", {"windsor": "engineer"}, actor="test")
    with pytest.raises(InvalidRequest, match="exceeds what the user holds"):
        auth.create_token("t-windsor-operator", "elsewhere", {"detroit": "viewer"}, actor="test")
    with pytest.raises(InvalidRequest, match="exceeds what the creator holds"):
        auth.create_token("admin", "by a viewer", {"windsor": "operator"}, actor="t-windsor-viewer",
                          actor_roles={"windsor": "viewer"})
    # a token keeps within what its user holds today: lowering the user lowers the token
    tok = auth.create_token("t-lowered", "ops", None, actor="test")
    stage = {"tag": "windsor/stamping/press-line-1/press1/run_command", "value": False}
    with served.client(headers={"authorization": f"Bearer {tok.secret}"}) as c:
        assert c.get("/api/v1/auth/me").json()["roles"] == {"windsor": "operator"}
        auth.set_roles("t-lowered", {"windsor": "viewer"}, actor="test")
        assert c.get("/api/v1/auth/me").json()["roles"] == {"windsor": "viewer"}
        r = c.post("/api/v1/control/stage", json=stage)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_csrf_on_cookie_sessions(served: Served, users: Users) -> None:
    users.login("t-windsor-operator")
    cookie = users.clients["t-windsor-operator"].cookies["plantlink_session"]
    right = users.csrf["t-windsor-operator"]
    with served.client(cookies={"plantlink_session": cookie}) as c:
        for headers in ({}, {"x-csrf-token": "0" * 64}, {"x-csrf-token": right[:-1]},
                        {"x-csrf-token": users.csrf.get("admin") or "x"}):
            r = c.post("/api/v1/alarms/shelve", json=SHELVE, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", headers
            r = c.put("/api/v1/downtime/1/reason", json={"reason": None}, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", headers
        assert c.get("/api/v1/auth/me").status_code == 200  # reads need no token
        r = c.post("/api/v1/alarms/shelve", json=SHELVE, headers={"x-csrf-token": right})
        assert r.status_code == 200, r.text
        r = c.post("/api/v1/alarms/unshelve", json={"alarm": W_ALARM}, headers={"x-csrf-token": right})
        assert r.status_code == 200, r.text


def test_another_users_csrf_token_does_not_fit(served: Served, users: Users) -> None:
    users.login("admin")
    op = users.login("t-windsor-operator")
    r = op.post("/api/v1/alarms/shelve", json=SHELVE, headers={"x-csrf-token": users.csrf["admin"]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"


def test_cross_origin_login_and_websocket_are_refused(served: Served, users: Users) -> None:
    with served.client() as c:
        r = c.post("/api/v1/auth/login", json={"user": "t-windsor-viewer", "password": "x"},
                   headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    cookie = f"plantlink_session={users.login('t-windsor-viewer').cookies['plantlink_session']}"
    with pytest.raises(InvalidStatus):
        connect(served.url.replace("http://", "ws://") + "/api/v1/stream",
                additional_headers={"cookie": cookie, "origin": "https://evil.example"}, open_timeout=10)
