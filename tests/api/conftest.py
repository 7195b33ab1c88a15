"""API test fixtures: a real Runtime on a crafted plant (device disabled: data is published into the bus or
written into the store by the test), a test auth middleware, an httpx client and a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantlink.api.app import create_app
from plantlink.api.server import ServerHandle, serve
from plantlink.identity import Principal
from plantlink.model import parse_plant
from plantlink.runtime import Runtime

PLANT = """
enterprise: Test Co
devices:
  plc: {protocol: modbus, host: 127.0.0.1, port: 1502, enabled: false}
sites:
  - name: windsor
    timezone: America/Toronto
    calendar:
      shifts:
        - {name: A, start: "06:00", end: "14:00", days: [mon, tue, wed, thu, fri, sat, sun],
           breaks: [{start: "10:00", end: "10:30"}]}
    areas:
      - name: a1
        lines:
          - name: l1
            costs: {currency: CAD, downtime_per_hour: 3600, margin_per_part: 2.0}
            downtime:
              reasons: [{name: Mechanical, reasons: [Jam, Leak]}, {name: Material, reasons: [No blanks]}]
            machines:
              - name: m1
                production: {produced: count, reject: reject, ideal_cycle_time: 4s}
                tags:
                  - {name: count, type: int, source: {device: plc, address: 0, type: uint32}}
                  - {name: reject, type: int, source: {device: plc, address: 2, type: uint32}}
                  - {name: temp, unit: degC, source: {device: plc, address: 4, type: float32}}
                  - {name: recipe, type: string, source: {device: plc, address: 6, type: string, length: 4}}
              - name: m2
                states: {state_tag: st}
                tags:
                  - {name: st, type: int, source: {device: plc, address: 10, type: uint16}}
                  - {name: speed, unit: m/min, source: {device: plc, address: 11, type: float32}}
  - name: detroit
    timezone: America/Detroit
    areas:
      - name: d1
        lines:
          - name: l2
            downtime:
              micro_stop: 0s
              reasons: [{name: Mechanical, reasons: [Jam, Robot fault]}, {name: People, reasons: [Meeting]}]
            machines:
              - name: m3
                states: {state_tag: st}
                tags:
                  - {name: st, type: int, source: {device: plc, address: 20, type: uint16}}
                  - {name: temp, unit: degC, source: {device: plc, address: 21, type: float32}}
"""

PRINCIPAL_HEADER = "x-test-principal"


def strict_json(text: str) -> Any:
    """Parse JSON as a browser does: the NaN and Infinity tokens that Python's json accepts are errors."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def principal_header(spec: str) -> dict[str, str]:
    """``"ann:windsor=viewer,detroit=operator"`` -> the header the test middleware reads."""
    return {PRINCIPAL_HEADER: spec}


def parse_principal(spec: str) -> Principal:
    name, _, roles = spec.partition(":")
    pairs = [r.split("=", 1) for r in roles.split(",") if r]
    return Principal(name, {site: role for site, role in pairs})  # type: ignore[misc]


class HeaderAuth:
    """Test stand-in for the auth middleware: the principal comes from a header (HTTP and WebSocket)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            for key, value in scope.get("headers", []):
                if key.decode("latin-1") == PRINCIPAL_HEADER:
                    scope.setdefault("state", {})["principal"] = parse_principal(value.decode())
        await self.app(scope, receive, send)


def install_header_auth(app: Any) -> None:
    app.add_middleware(HeaderAuth)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(parse_plant(PLANT, "test-plant.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def settle(rt: Runtime) -> None:
    """Wait until the historian writer, the latest values and the engines consumed what was published, then flush."""
    assert rt.writer is not None
    for _ in range(500):
        if rt.writer.sub.pending() == 0 and rt.latest.pending() == 0 and all(s.pending() == 0 for s in rt._engine_subs):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.02)
    await rt.writer.flush()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """``client("ann:windsor=viewer")`` -> an httpx client on the app, authenticated as that principal."""
    app = create_app(runtime, auth=install_header_auth)
    made: list[httpx.AsyncClient] = []

    def make(spec: str | None = "admin:*=admin") -> httpx.AsyncClient:
        headers = principal_header(spec) if spec else {}
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()
    await app.state.live.stop()


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[ServerHandle]:
    handle = await serve(runtime, "127.0.0.1", 0, app_hook=install_header_auth)
    try:
        yield handle
    finally:
        await handle.stop()


Settle = Callable[[Runtime], Awaitable[None]]
