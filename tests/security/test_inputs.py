"""Hostile input on the served application: other sites' objects by id, injection in paths and queries,
oversized bodies, path traversal on the file-serving routes."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa

from plantlink.store import default_url
from tests.security.conftest import D_RUN, W_LINE, W_TAG, Served, Users
from tests.security.test_matrix import Ctx, route_keys

SQL = "'; DROP TABLE downtime_events; --"
HOSTILE = [SQL, "1 OR 1=1", "../../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "a\x00b", "%00", "\u202e\u0000",
           "x" * 4000, "<script>alert(1)</script>", "${jndi:ldap://x}", "windsor/../detroit"]


def _envelope_4xx(r: object, what: str) -> None:
    status = r.status_code  # type: ignore[attr-defined]
    assert 400 <= status < 500, (what, status, r.text[:300])  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["status"] == status, (what, body)


def _tables(served: Served) -> set[str]:
    engine = sa.create_engine(default_url(served.data_dir))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_another_sites_objects_by_id_are_not_found(served: Served, users: Users) -> None:
    w_op = users.login("t-windsor-operator")
    detroit_event = served.events["detroit"]
    missing = 10_000_000
    for method, url, body in (("GET", "/api/v1/downtime/{id}", None),
                              ("PUT", "/api/v1/downtime/{id}/reason", {"reason": "Spindle"})):
        theirs = w_op.request(method, url.format(id=detroit_event), json=body)
        nobody = w_op.request(method, url.format(id=missing), json=body)
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json()["error"]["message"].replace(str(detroit_event), "N") == \
            nobody.json()["error"]["message"].replace(str(missing), "N")  # the same answer: nothing leaks
        assert "detroit" not in theirs.text and "cnc2" not in theirs.text
    # a detroit alarm acted on by a windsor operator
    r = w_op.post("/api/v1/alarms/ack", json={"alarms": ["detroit/machining/cnc-cell-2/cnc2/spindle_speed:x"]})
    assert r.status_code in (403, 404)
    alarms = users.login("admin").get("/api/v1/alarms", params={"site": "detroit", "state": ["normal"]}).json()
    d_alarm = alarms["items"][0]["key"] if alarms["items"] else None
    if d_alarm is not None:
        actions: list[tuple[str, dict[str, Any]]] = [
            ("ack", {"alarms": [d_alarm]}), ("shelve", {"alarm": d_alarm, "reason": "x", "minutes": 1}),
            ("out-of-service", {"alarm": d_alarm, "out": True})]
        for path, body in actions:
            r = w_op.post(f"/api/v1/alarms/{path}", json=body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (path, r.text)
    # a detroit staged write: confirm, approve and pending from windsor
    ctx = Ctx(served, users)
    d_staged = ctx.stage("detroit-operator", D_RUN)
    for who in ("t-windsor-operator", "t-windsor-admin"):
        c = users.login(who)
        r = c.post("/api/v1/control/confirm", json={"staged_id": d_staged, "command_id": f"x-{who}"})
        assert r.status_code in (200, 403, 404)
        assert "cnc2" not in r.text and "detroit-operator" not in r.text, r.text
        r = c.post("/api/v1/control/approve", json={"staged_id": d_staged})
        assert r.status_code == 404 and "cnc2" not in r.text
        assert d_staged not in c.get("/api/v1/control/pending").text
    # and the detroit operator can still confirm their own write
    r = users.login("detroit-operator").post("/api/v1/control/confirm",
                                             json={"staged_id": d_staged, "command_id": "d-own"})
    assert r.status_code == 200 and r.json()["tag"] == D_RUN


def test_hostile_path_and_query_values_get_4xx_envelopes(served: Served, users: Users) -> None:
    c = users.login("t-windsor-engineer")
    before = _tables(served)
    for value in HOSTILE:
        in_path = quote(value, safe="/")
        for url, params in ((f"/api/v1/tags/{in_path}", {}), ("/api/v1/values", {"tag": value}),
                            ("/api/v1/history/raw", {"tag": value}), ("/api/v1/states", {"site": value}),
                            ("/api/v1/states/timeline", {"machine": value}), ("/api/v1/oee", {"scope": value}),
                            ("/api/v1/downtime", {"site": value}), ("/api/v1/lines/reasons", {"line": value}),
                            ("/api/v1/alarms", {"site": value}),
                            ("/api/v1/downtime", {"site": "windsor", "start": value}),
                            ("/api/v1/history/aggregate", {"tag": W_TAG, "interval": value}),
                            (f"/api/v1/downtime/{in_path}", {})):
            r = c.get(url, params=params)
            _envelope_4xx(r, f"{url} {params} {value[:30]!r}")
        for path, body in (("/api/v1/control/stage", {"tag": value, "value": 1}),
                           ("/api/v1/alarms/ack", {"alarms": [value]}),
                           ("/api/v1/control/confirm", {"staged_id": value[:64], "command_id": "c"})):
            r = c.post(path, json=body)
            assert r.status_code != 500 and r.status_code < 500, (path, value[:30], r.text[:200])
    admin = users.login("admin")
    for value in HOSTILE:
        for params in ({"actor": value}, {"kind": value}, {"site": value}, {"start": value}):
            r = admin.get("/api/v1/audit", params=params)
            assert r.status_code in (200, 400, 403, 422), (params, r.text[:200])
    assert _tables(served) == before


def test_sql_in_a_reason_comment_is_stored_verbatim(served: Served, users: Users) -> None:
    c = users.login("t-windsor-operator")
    event = served.events["windsor2"]
    r = c.put(f"/api/v1/downtime/{event}/reason", json={"reason": SQL})
    _envelope_4xx(r, "unknown reason")
    assert r.json()["error"]["code"] == "bad_reason"
    r = c.put(f"/api/v1/downtime/{event}/reason", json={"reason": "Transfer jam", "comment": SQL})
    assert r.status_code == 200, r.text
    got = c.get(f"/api/v1/downtime/{event}").json()
    assert SQL in str(got), got
    assert {"downtime_events", "audit_log"} <= _tables(served)
    assert c.get("/api/v1/downtime", params={"site": "windsor"}).status_code == 200


def _raw_get(served: Served, cookie: str, path: str) -> tuple[int, bytes]:
    u = urlsplit(served.url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=20)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("cookie", f"plantlink_session={cookie}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


TRAVERSALS = ["../../../../../../etc/passwd", "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
              "..%2f..%2f/etc/passwd", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
              "..%252f..%252f..%252fetc%252fpasswd", "....//....//....//etc/passwd", "%2fetc%2fpasswd",
              "/etc/passwd", "..\\..\\..\\etc\\passwd", "..%5c..%5c..%5cetc%5cpasswd",
              "..%c0%af..%c0%af..%c0%afetc%c0%afpasswd", "..%2f..%2f..%2f..%2fpyproject.toml",
              "../../../../pyproject.toml"]


def test_no_file_outside_the_packages_is_served(served: Served, users: Users) -> None:
    cookie = users.login("t-windsor-viewer").cookies["plantlink_session"]
    v = route_keys(served)[1]
    bases = [f"/hmi/_nicegui/{v}/static/", f"/hmi/_nicegui/{v}/libraries/", f"/hmi/_nicegui/{v}/components/",
             f"/hmi/_nicegui/{v}/resources/x/", f"/hmi/_nicegui/{v}/esm/x/", f"/hmi/_nicegui/{v}/dynamic_resources/",
             "/hmi/", "/hmi/line/", "/hmi/machine/", "/api/v1/tags/", "/api/v1/audit/", "/docs/", "/"]
    secret_files = [b"root:x:0:0", b"[project]", b"SQLite format 3"]
    for base in bases:
        for trick in TRAVERSALS:
            status, body = _raw_get(served, cookie, base + trick)
            assert not any(s in body for s in secret_files), (base + trick, status, body[:200])
            assert status != 500, (base + trick, body[:200])
    status, body = _raw_get(served, cookie, f"/hmi/_nicegui/{v}/static/nicegui.css")
    assert status == 200 and body  # the package's own files are served


def test_the_csv_export_filename_comes_from_the_server(served: Served, users: Users) -> None:
    admin = users.login("admin")
    r = admin.get("/api/v1/audit/export.csv", params={"kind": "x.", "filename": "../../etc/passwd"})
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="plantlink-audit-') and ".." not in disposition
    r = admin.get("/api/v1/audit/export.csv/../../../etc/passwd")
    assert b"root:x:0:0" not in r.content


def test_oversized_bodies_are_refused_with_413(served: Served, users: Users) -> None:
    big = b'{"user": "' + b"a" * (1024 * 1024 + 10) + b'", "password": "x"}'
    with served.client() as c:
        r = c.post("/api/v1/auth/login", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer, counted as read
            yield b'{"user": "'
            for _ in range(20):
                yield b"b" * 65536
            yield b'", "password": "x"}'

        r = c.post("/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        r = c.post("/login", content=b"user=" + b"c" * (2 * 1024 * 1024),
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
    op = users.login("t-windsor-operator")
    comment = "d" * (1024 * 1024)
    r = op.put(f"/api/v1/downtime/{served.events['windsor']}/reason", json={"reason": "Transfer jam",
                                                                           "comment": comment})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = op.post("/api/v1/alarms/ack", json={"alarms": ["k" * 100] * 12000})  # 1.2 MB of alarm keys
    assert r.status_code == 413
    r = op.get("/api/v1/lines/reasons", params={"line": W_LINE})
    assert r.status_code == 200  # the server is fine afterwards
