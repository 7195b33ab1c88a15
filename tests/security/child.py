"""The real served application in a child process, for the security tests.

    python -m tests.security.child DATA_DIR INFO_JSON

Starts the simulated demo plant (examples/demo-plant.yaml) on free loopback ports, a Runtime reading it and
the API + HMI behind authentication exactly as ``plantlink demo`` serves them (``plantlink.app._auth_hook``
with the demo users), on a free port. Extra users ``t-<site>-<role>`` (password ``pw-<site>-<role>-x``) are
created first. Writes ``INFO_JSON`` ({"url", "routes"}) once listening; logs everything (DEBUG) to stderr;
runs until stdin closes. A child process because NiceGUI mounts one application per process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from starlette.routing import Mount, Route, WebSocketRoute

from plantlink.app import ServeOptions, _auth_hook, free_port
from plantlink.model import parse_plant
from plantlink.runtime import Runtime
from plantlink.sim import Simulator, plant_with_ports

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-plant.yaml"
SITES = ("windsor", "detroit")
ROLES = ("viewer", "operator", "engineer", "admin")
#: more users for tests that lock, disable or change them: name -> (roles, password)
EXTRA: dict[str, tuple[dict[str, str], str]] = {
    "t-brute": ({"windsor": "viewer"}, "pw-brute-force-x"),
    "t-disable": ({"windsor": "operator"}, "pw-disable-me-x"),
    "t-lowered": ({"windsor": "operator"}, "pw-lowered-x-x"),
}


def user_of(site: str, role: str) -> str:
    return f"t-{site}-{role}"


def password_of(site: str, role: str) -> str:
    return f"pw-{site}-{role}-x"


def route_list(routes: list[Any], prefix: str = "") -> list[dict[str, Any]]:
    """Every endpoint: HTTP routes with their methods, WebSocket routes, and the routes inside mounts (also the
    routes of included routers)."""
    out: list[dict[str, Any]] = []
    for ctx in iter_route_contexts(routes):
        r = ctx.original_route
        path = prefix + str(ctx.path or getattr(r, "path", "?"))
        if isinstance(r, Mount):
            inner = getattr(r.app, "routes", None)
            if inner is None:
                out.append({"kind": "mount", "path": path, "methods": []})
            else:
                out.extend(route_list(list(inner), path))
        elif isinstance(r, WebSocketRoute | APIWebSocketRoute):
            out.append({"kind": "ws", "path": path, "methods": []})
        elif isinstance(r, Route):
            out.append({"kind": "http", "path": path, "methods": sorted(r.methods or [])})
        else:
            out.append({"kind": type(r).__name__, "path": path, "methods": []})
    return out


async def main(data_dir: Path, info_file: Path) -> None:
    text = DEMO.read_text(encoding="utf-8")
    base = parse_plant(text, str(DEMO))
    plant = parse_plant(plant_with_ports(text, {dev: free_port() for dev in base.devices}), str(DEMO))
    sim = Simulator(plant, seed=3, speed=1.0)
    await sim.start()
    runtime = Runtime(plant, data_dir, flush_interval=0.5)
    await runtime.start()
    from plantlink.api.server import serve

    hook = _auth_hook(runtime, ServeOptions(demo_users=True), False)
    auth = None

    def app_hook(app: Any) -> None:
        nonlocal auth
        hook(app)
        auth = app.state.auth

    handle = await serve(runtime, "127.0.0.1", 0, app_hook=app_hook, log_level="debug")
    assert auth is not None
    for site in SITES:
        for role in ROLES:
            auth.create_user(user_of(site, role), {site: role}, actor="test:setup", password=password_of(site, role))
    for name, (roles, password) in EXTRA.items():
        auth.create_user(name, roles, actor="test:setup", password=password)
    await _ready(runtime)
    info = {"url": handle.url, "routes": route_list(list(handle.app.routes))}
    info_file.write_text(json.dumps(info), encoding="utf-8")
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    finally:
        await handle.stop()
        await runtime.stop()
        await sim.stop()


async def _ready(runtime: Runtime) -> None:
    """Wait until every device is connected and every tag has a value (the tests act on current values; on a
    loaded machine the first OPC UA values may take many seconds). The parent bounds the wait."""
    ids = [int(runtime.tag_ids[t.path]) for t in runtime.plant.tags]  # read from devices (not the derived)
    while True:
        if runtime.historian is not None and all(c.health.ok for c in runtime.connectors.values()):
            latest = runtime.historian.latest(ids)
            if latest.num_rows == len(ids) and latest.column("ts").null_count == 0:
                return
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("asyncua", "pymodbus", "aiosqlite", "asyncio", "watchfiles", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
