"""Display tokens (plantlink.auth.display) on the served application: a wallboard URL with the token sets the
display cookie and drops the token from the address; the display then reaches its wallboards and nothing else
of the matrix (every other route refused, 401 or 403), not a wallboard of another line, not the API with the
token as a bearer; revoking it (here from another process, as `plantlink` commands would) ends it; every step
is audited."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from plantlink.auth import AuthService
from plantlink.auth.display import DISPLAY_COOKIE, DISPLAY_PATHS
from tests.security.conftest import D_LINE, W_LINE, W_MACHINE, Served, Users
from tests.security.matrix import ROUTES
from tests.security.test_matrix import PUBLIC, SPECIAL, Ctx, _send


@pytest.fixture
def accounts(served: Served) -> Iterator[AuthService]:
    svc = AuthService.open(served.data_dir)
    try:
        yield svc
    finally:
        svc.close()


def _display(served: Served, secret: str, path: str = W_LINE) -> httpx.Client:
    c = served.client()
    r = c.get(f"/hmi/wall/{path}", params={"display": secret, "rotate": "10"}, headers={"accept": "text/html"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/hmi/wall/{path}?rotate=10"  # the token left the address
    assert DISPLAY_COOKIE in c.cookies
    return c


def test_a_display_token_shows_only_its_wallboards(served: Served, users: Users, accounts: AuthService) -> None:
    made = accounts.displays.create("press TV", "windsor", W_LINE, actor="matrix-test")
    c = _display(served, made.secret)
    page = c.get(f"/hmi/wall/{W_LINE}", headers={"accept": "text/html"})
    assert page.status_code == 200 and "conveyor1" in page.text
    assert c.get(f"/hmi/wall/{D_LINE}").status_code == 403  # another line (another site): refused
    assert c.get("/hmi/wall/windsor/body-paint/body-line-1").status_code == 403  # another line of the site
    ctx = Ctx(served, users, setup=False)
    refused, reached = [], []
    for key in sorted(set(ROUTES) - PUBLIC - SPECIAL):
        call = ctx.call(key, "display", {})
        if call.url.startswith(DISPLAY_PATHS):  # the wallboards and what their page loads
            reached.append(key)
            continue
        r = _send(c, call)
        if r.status_code not in (401, 403):
            refused.append(f"{key}: {r.status_code} {r.text[:100]!r}")
    assert refused == [], "a display token reached:\n" + "\n".join(refused)
    assert "GET /hmi/wall/{path:path}" in reached and not any("/api/" in k or "/hmi/line" in k for k in reached)
    for path in (f"/hmi/line/{W_LINE}", f"/hmi/machine/{W_MACHINE}", "/hmi/", "/api/v1/auth/me"):
        r = c.get(path, headers={"accept": "text/html"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "display_only", (path, r.status_code)
    for write in ("/api/v1/lines/handover", "/api/v1/alarms/ack"):
        assert c.post(write, json={}).status_code == 403
    with served.client(headers={"authorization": f"Bearer {made.secret}"}) as bearer:
        assert bearer.get("/api/v1/hierarchy").status_code == 401  # not an API token
    accounts.displays.revoke(made.info.id, actor="matrix-test")
    after = c.get(f"/hmi/wall/{W_LINE}", headers={"accept": "text/html"})
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    assert c.get(f"/hmi/wall/{W_LINE}", params={"display": made.secret}).status_code == 401
    kinds = [(r.kind, r.details.get("token_id")) for r in accounts.audit.query(limit=10_000)]
    for kind in ("auth.display_created", "auth.display_used", "auth.display_revoked"):
        assert (kind, made.info.id) in kinds, kind
    c.close()


def test_a_site_display_shows_every_line_of_its_site_only(served: Served, accounts: AuthService) -> None:
    made = accounts.displays.create("windsor hall", "windsor", None, actor="matrix-test")
    c = _display(served, made.secret, "windsor")
    page = c.get("/hmi/wall/windsor")
    assert page.status_code == 200 and "press-line-1" in page.text and "body-line-1" in page.text
    assert c.get(f"/hmi/wall/{W_LINE}").status_code == 200
    assert c.get("/hmi/wall/detroit").status_code == 403
    assert c.get("/hmi/wall/windsor", params={"rotate": "1"}).status_code == 400  # below the bounds: said so
    assert accounts.displays.get(made.info.id).last_used_us is not None
    accounts.displays.revoke(made.info.id, actor="matrix-test")
    c.close()


def test_handover_over_the_api(served: Served, users: Users) -> None:
    """An operator's note is read by a viewer of the site, refused to another site, and bad input is named."""
    text = "API note: oven 1 zone 2 slow to heat"
    r = users.login("t-windsor-operator").post("/api/v1/lines/handover", json={"line": W_LINE, "text": text})
    assert r.status_code == 200, r.text
    note = r.json()
    assert (note["author"], note["line"], note["site"], note["text"]) == ("t-windsor-operator", W_LINE, "windsor",
                                                                          text)
    got = users.login("t-windsor-viewer").get("/api/v1/lines/handover", params={"line": W_LINE})
    assert got.status_code == 200
    assert note["id"] in [n["id"] for n in got.json()["current"]["notes"]]
    assert users.login("t-detroit-admin").get("/api/v1/lines/handover", params={"line": W_LINE}).status_code == 403
    bad = users.login("t-windsor-operator").post("/api/v1/lines/handover",
                                                 json={"line": W_LINE, "text": "fix", "replaces": 10**9})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "replaces", bad.text
    empty = users.login("t-windsor-operator").post("/api/v1/lines/handover", json={"line": W_LINE, "text": ""})
    assert empty.status_code in (400, 422) and "text" in empty.text
    audit = users.login("admin").get("/api/v1/audit", params={"site": "windsor", "kind": "handover.note"})
    assert any(a["details"]["note_id"] == note["id"] for a in audit.json()["items"]), audit.text[:300]
