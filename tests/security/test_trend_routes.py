"""The trend routes over HTTP: notes on a machine's trend and saved views, with their rights (viewers do not
add notes; another site's user is refused, 403 for a path and 404 for an id), their errors in the JSON
envelope naming the field, and their audit records."""

from __future__ import annotations

import time

from tests.security.conftest import W_MACHINE, W_TAG, Served, Users

NOTES = "/api/v1/trends/annotations"
VIEWS = "/api/v1/trends/views"


def _ms(offset_s: float = 0.0) -> str:
    return str(int((time.time() + offset_s) * 1000))


def test_a_note_added_by_an_operator_is_listed_for_a_viewer_and_audited(served: Served, users: Users) -> None:
    op, viewer, admin = (users.login(u) for u in ("t-windsor-operator", "t-windsor-viewer", "admin"))
    at = _ms(-120)
    r = op.post(NOTES, json={"machine": W_MACHINE, "text": "belt tracked by hand", "start": at,
                             "end": _ms(-60)})
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["author"] == "t-windsor-operator" and note["start_us"] == int(at) * 1000
    listed = viewer.get(NOTES, params={"machine": W_MACHINE, "start": _ms(-300), "end": _ms()})
    assert listed.status_code == 200
    assert note["id"] in [n["id"] for n in listed.json()["items"]]
    trail = admin.get("/api/v1/audit", params={"site": "windsor", "kind": "trend.annotation.add", "limit": 1000})
    assert trail.status_code == 200, trail.text
    assert any(rec["details"].get("id") == note["id"] and rec["actor"] == "t-windsor-operator"
               for rec in trail.json()["items"]), trail.text[:500]
    # a viewer at the site may not add one, nor delete the operator's; another site's operator neither
    refused = viewer.post(NOTES, json={"machine": W_MACHINE, "text": "x", "start": at})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert viewer.delete(f"{NOTES}/{note['id']}").status_code == 403
    detroit = users.login("t-detroit-operator")
    assert detroit.post(NOTES, json={"machine": W_MACHINE, "text": "x", "start": at}).status_code == 403
    assert detroit.get(NOTES, params={"machine": W_MACHINE}).status_code == 403
    gone = detroit.delete(f"{NOTES}/{note['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "annotation_id"
    assert op.delete(f"{NOTES}/{note['id']}").status_code == 200
    assert note["id"] not in [n["id"] for n in viewer.get(NOTES, params={"machine": W_MACHINE}).json()["items"]]


def test_bad_notes_answer_the_envelope_naming_the_field(served: Served, users: Users) -> None:
    op = users.login("t-windsor-operator")
    cases = [
        ({"machine": W_MACHINE, "text": "  ", "start": _ms()}, 422, "text"),
        ({"machine": W_MACHINE, "text": "y" * 501, "start": _ms()}, 422, "text"),
        ({"machine": W_MACHINE, "text": "ok", "start": "yesterday"}, None, "start"),
        ({"machine": W_MACHINE, "text": "ok", "start": _ms(-500 * 86400)}, 422, "start"),
        ({"machine": W_MACHINE, "text": "ok", "start": _ms(), "end": _ms(-10)}, 422, "end"),
        ({"machine": W_MACHINE, "text": "ok", "start": _ms(), "tag": "no_such_tag"}, 404, "tag"),
        ({"machine": W_MACHINE + "-nope", "text": "ok", "start": _ms()}, 404, "machine"),
        ({"text": "ok", "start": _ms()}, 422, "machine"),
    ]
    for body, status, field in cases:
        r = op.post(NOTES, json=body)
        err = r.json()["error"]
        assert (status is None or r.status_code == status) and 400 <= r.status_code < 500, (body, r.text)
        assert err["field"] == field and err["message"], (body, r.text)


def test_a_saved_view_reopens_with_its_pens_and_range(served: Served, users: Users) -> None:
    viewer, other = users.login("t-windsor-viewer"), users.login("t-windsor-operator")
    pens = [W_TAG, f"{W_MACHINE}/speed"]
    r = viewer.post(VIEWS, json={"machine": W_MACHINE, "name": "belt, last day", "pens": pens, "span_s": 86400})
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    again = viewer.get(f"{VIEWS}/{vid}").json()
    assert (again["pens"], again["span_s"], again["start_us"], again["shared"]) == (pens, 86400, None, False)
    assert vid in [v["id"] for v in viewer.get(VIEWS, params={"machine": W_MACHINE}).json()["items"]]
    # another user does not see it (not shared), nor may a viewer share one
    assert other.get(f"{VIEWS}/{vid}").status_code == 404
    assert vid not in [v["id"] for v in other.get(VIEWS).json()["items"]]
    shared = viewer.post(VIEWS, json={"machine": W_MACHINE, "name": "s", "pens": pens, "span_s": 60, "shared": True})
    assert shared.status_code == 403
    bad = viewer.post(VIEWS, json={"machine": W_MACHINE, "name": "n", "pens": pens})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "span_s"
    assert viewer.delete(f"{VIEWS}/{vid}").status_code == 200
    assert viewer.get(f"{VIEWS}/{vid}").status_code == 404
