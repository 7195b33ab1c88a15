"""`plantlink demo` serving: the simulated plant behind the API with authentication on, as a person uses it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from plantlink import app as plapp
from plantlink.cli import DEMO_PLANT


async def test_demo_serves_the_api_behind_login(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    served: dict[str, str] = {}
    real_serve = plapp._serve

    async def spy(runtime, opts, announce):  # type: ignore[no-untyped-def]
        handle = await real_serve(runtime, opts, announce)
        served["url"] = handle.url
        return handle

    monkeypatch.setattr(plapp, "_serve", spy)
    opts = plapp.ServeOptions(port=0, demo_users=True)
    task = asyncio.create_task(plapp.run_demo(DEMO_PLANT, tmp_path, duration=12, announce=False, serve=opts))
    for _ in range(200):
        if "url" in served or task.done():
            break
        await asyncio.sleep(0.05)
    url = served["url"]
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert (await c.get("/healthz")).status_code == 200
        r = await c.get("/api/v1/hierarchy")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        r = await c.get("/", headers={"accept": "text/html"})
        assert r.status_code in (302, 303, 307) and "/login" in r.headers["location"]
        r = await c.post("/api/v1/auth/login", json={"user": "operator", "password": "wrong"})
        assert r.status_code == 401
        r = await c.post("/api/v1/auth/login", json={"user": "operator", "password": "demo-operator-pw"})
        assert r.status_code == 200, r.text
        h = (await c.get("/api/v1/hierarchy")).json()
        assert [s["name"] for s in h["sites"]] == ["windsor"]  # the operator sees only their site
        await asyncio.sleep(2)
        latest = await c.get("/api/v1/values", params={"tag": "windsor/stamping/press-line-1/press1/tonnage"})
        assert latest.status_code == 200, latest.text
        (row,) = latest.json()["values"]
        assert row["quality"] == "good" and row["value"] is not None
    status = await task
    assert status["api"] == url and status["samples_stored"] > 0
