"""Integer parameters at and beyond what the database holds: every integer path or query parameter of every
route in the OpenAPI schema (so a new route is covered without editing this test) answers 422 naming the
parameter for a value outside its bounds (a value too large for a 64-bit integer included), and never 500 at
the largest value it accepts. Over a real server on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from plantlink.api.server import ServerHandle
from plantlink.runtime import Runtime
from tests.api.conftest import principal_header
from tests.api.test_rest import publish_series

HUGE = 99999999999999999999999  # more digits than any database integer
INT64 = 2**63 - 1
TAG = "windsor/a1/l1/m1/temp"
#: a valid value for every required non-integer parameter (a route with a new one fails below: add it here)
SAMPLES = {"tag": TAG, "ref": TAG, "machine": "windsor/a1/l1/m2", "scope": "windsor", "line": "windsor/a1/l1",
           "site": "windsor", "start": "0", "end": "3600000", "interval": "1m", "by": "reason"}
#: a valid body for every route that takes one, by (method, path)
BODIES: dict[tuple[str, str], Any] = {("put", "/api/v1/downtime/{event_id}/reason"): {"reason": None}}


def client(server: ServerHandle) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30, headers=principal_header("admin:*=admin"))


def int_params(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(method, path, operation, parameter) for every integer path or query parameter."""
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schema = p.get("schema", {})
                kinds = [schema.get("type"), *(a.get("type") for a in schema.get("anyOf", []))]
                if "integer" in kinds and p["in"] in ("path", "query"):
                    out.append((method, path, op, p))
    return out


def bounds(p: dict[str, Any]) -> tuple[int | None, int | None]:
    schema = p["schema"]
    for s in [schema, *schema.get("anyOf", [])]:
        if s.get("type") == "integer":
            return s.get("minimum"), s.get("maximum")
    return None, None


async def request(c: httpx.AsyncClient, method: str, path: str, op: dict[str, Any], name: str,
                  value: int) -> httpx.Response:
    params: dict[str, Any] = {}
    url = path
    for p in op.get("parameters", []):
        v = str(value) if p["name"] == name else SAMPLES.get(p["name"]) if p.get("required") else None
        if v is None and p.get("required"):
            v = "1" if "integer" in str(p["schema"]) else None
        assert v is not None or not p.get("required"), f"{method} {path}: add a sample for {p['name']!r}"
        if v is None:
            continue
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", v)
        elif p["in"] == "query":
            params[p["name"]] = v
    body = op.get("requestBody")
    json_body = BODIES.get((method, path))
    assert body is None or json_body is not None or not body.get("required"), f"add a body for {method} {path}"
    return await c.request(method.upper(), url, params=params, json=json_body)


async def test_every_integer_parameter_is_bounded(server: ServerHandle) -> None:
    async with client(server) as c:
        spec = (await c.get("/openapi.json")).json()
        found = int_params(spec)
        names = {(m, p, q["name"]) for m, p, _, q in found}
        # the routes the issue named are among them (and the walk is not empty)
        assert {("get", "/api/v1/downtime/{event_id}", "event_id"), ("get", "/api/v1/downtime", "offset"),
                ("get", "/api/v1/alarms/history", "offset")} <= names
        failures = []
        for method, path, op, p in found:
            low, high = bounds(p)
            assert high is not None and high <= INT64, f"{method} {path} {p['name']}: no upper bound that fits"
            assert low is not None and low >= -INT64 - 1, f"{method} {path} {p['name']}: no lower bound"
            for value in (HUGE, -HUGE, INT64 + 1, high + 1, low - 1):
                r = await request(c, method, path, op, p["name"], value)
                err = r.json().get("error", {}) if r.headers.get("content-type") == "application/json" else {}
                if r.status_code != 422 or err.get("field") != p["name"] or err.get("code") != "invalid":
                    failures.append((method, path, p["name"], value, r.status_code, r.text[:160]))
            r = await request(c, method, path, op, p["name"], high)
            if r.status_code >= 500:
                failures.append((method, path, p["name"], high, r.status_code, r.text[:160]))
        assert not failures, "\n".join(map(str, failures))


async def test_interval_too_long_or_not_finite_is_422(server: ServerHandle, runtime: Runtime) -> None:
    """Over stored samples: the longest interval accepted aggregates them into one bucket."""
    await publish_series(runtime, TAG, np.array([1_000_000, 2_000_000]), np.array([1.0, 3.0]))
    async with client(server) as c:
        for interval in (str(HUGE), f"{HUGE}d", "9" * 400, "9" * 400 + "ms", "3651d"):
            r = await c.get("/api/v1/history/aggregate", params={"tag": TAG, "start": "0", "end": "3600000",
                                                           "interval": interval})
            assert r.status_code == 422, (interval, r.text)
            assert r.json()["error"]["field"] == "interval" and "at most" in r.json()["error"]["message"]
        r = await c.get("/api/v1/history/aggregate", params={"tag": TAG, "start": "0", "end": "3600000",
                                                       "interval": "3650d"})
        assert r.status_code == 200, r.text
        series = r.json()["series"][0]
        assert series["count"] == [2] and series["mean"] == [2.0]


async def test_an_id_that_fits_but_does_not_exist_is_404(server: ServerHandle) -> None:
    async with client(server) as c:
        r = await c.get(f"/api/v1/downtime/{INT64}")
        assert r.status_code == 404 and r.json()["error"]["field"] == "event_id"
        r = await c.put(f"/api/v1/downtime/{INT64}/reason", json={"reason": None})
        assert r.status_code == 404
