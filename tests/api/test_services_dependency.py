"""Routes find what they need through one dependency (``plantlink.api.services``): the app's ``Services``.
Before the runtime has started, each answers 503 naming the part that is not running; no route module looks
anything else up on ``app.state``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from plantlink.api.app import create_app
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from tests.api.conftest import PLANT, install_header_auth, principal_header

API = Path(__file__).resolve().parents[2] / "src" / "plantlink" / "api"
#: what the app itself keeps on app.state: its services, the live hub, and the auth's session watch
APP_STATE = {"services", "live", "sessions"}


async def test_before_the_runtime_starts_each_part_answers_503(tmp_path: Path) -> None:
    rt = Runtime(parse_plant(PLANT, "test-plant.yaml"), tmp_path / "data")
    app = create_app(rt, auth=install_header_auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers=principal_header("admin:*=admin")) as c:
        for method, url, body, what in (
                ("GET", "/api/v1/alarms", None, "the alarm system is not running"),
                ("POST", "/api/v1/control/stage", {"tag": "windsor/a1/l1/m1/temp", "value": 1},
                 "the control path is not running"),
                ("GET", "/api/v1/audit/verify", None, "the audit log is not running"),
                ("GET", "/api/v1/health", None, "the runtime is not started: no services yet"),
                ("GET", "/api/v1/hierarchy", None, "the runtime is not started: no services yet")):
            r = await c.request(method, url, json=body)
            assert r.status_code == 503, (url, r.text)
            assert r.json()["error"]["code"] == "unavailable" and r.json()["error"]["message"] == what, r.text


def test_no_route_looks_a_part_up_on_app_state() -> None:
    found = {(p.name, (a or b).strip("'\"")) for p in API.rglob("*.py")
             for a, b in re.findall(r"app\.state(?:\.(\w+)|, ([^,)]+))", p.read_text())}
    assert found and {m for _, m in found} <= APP_STATE, sorted(found)
