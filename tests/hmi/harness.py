"""A real plantlink server for browser tests and the HMI benchmark: the demo plant simulated on free loopback
ports, a Runtime reading it, the API app with the HMI mounted, served by uvicorn on a free port. It runs in
a thread of its own (its own event loop) so that tests drive it with Playwright's sync API.

A test middleware stands in for the auth middleware: it sets ``request.state.principal`` to
``principals[header x-test-principal]``, or to ``principals["default"]`` without the header; a name that is
not in ``principals`` (e.g. ``anonymous``) leaves the request unauthenticated. With ``auth=True`` the real
authentication is installed instead (``plantlink.auth.install_auth``, users made through ``server.auth``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from plantlink.api.app import create_app
from plantlink.auth import AuthService, AuthSettings, bootstrap_demo_users, install_auth
from plantlink.hmi import mount_hmi
from plantlink.identity import Principal
from plantlink.model import Plant, parse_plant
from plantlink.runtime import Runtime
from plantlink.sim import Simulator, plant_with_ports

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo-plant.yaml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PRINCIPAL_HEADER = "x-test-principal"
#: cheap password hashing for tests
FAST_AUTH = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and shutil.which(CHROMIUM) is not None


class TestAuth:
    """ASGI middleware standing in for the auth middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, principals: dict[str, Principal]):
        self.app = app
        self.principals = principals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            name = dict(scope["headers"]).get(PRINCIPAL_HEADER.encode(), b"default").decode()
            who = self.principals.get(name)
            if who is not None:
                scope.setdefault("state", {})["principal"] = who
        await self.app(scope, receive, send)


class HmiServer:
    """Start with ``start()`` (blocks until the HMI answers), stop with ``stop()``."""

    def __init__(self, data_dir: Path, principals: dict[str, Principal], *, speed: float = 1.0,
                 prepare: Callable[[Plant, Path, Simulator], None] | None = None, auth: bool = False):
        self.data_dir = data_dir
        self.principals = principals
        self.use_auth = auth
        self.auth: AuthService | None = None
        self.speed = speed
        self.prepare = prepare
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="hmi-server", daemon=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime: Runtime | None = None
        self.simulator: Simulator | None = None
        self.app: FastAPI | None = None
        self._stop: asyncio.Event | None = None
        #: the YAML of the model it runs (the demo plant with the simulator's ports)
        self.model_text = ""

    # -- thread side ------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the caller of start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        text = DEMO.read_text(encoding="utf-8")
        base = parse_plant(text, str(DEMO))
        self.model_text = plant_with_ports(text, {dev: free_port() for dev in base.devices})
        plant = parse_plant(self.model_text, str(DEMO))
        self.simulator = Simulator(plant, seed=3, speed=self.speed)
        await self.simulator.start()
        if self.prepare is not None:
            self.prepare(plant, self.data_dir, self.simulator)
        self.runtime = Runtime(plant, self.data_dir, flush_interval=0.5)
        await self.runtime.start()
        self.app = create_app(self.runtime)
        if self.use_auth:
            assert self.runtime.store is not None
            self.auth = AuthService(self.runtime.store.engine, self.data_dir, FAST_AUTH)
            install_auth(self.app, self.auth, csrf_exempt=["/hmi/_nicegui"])
        else:
            self.app.add_middleware(TestAuth, principals=self.principals)

        mount_hmi(self.app, self.runtime)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        self._stop = asyncio.Event()
        serve = asyncio.create_task(server.serve())
        while not server.started:
            if serve.done():
                serve.result()
            await asyncio.sleep(0.05)
        self.ready.set()
        await self._stop.wait()
        server.should_exit = True
        await serve
        await self.runtime.stop()
        await self.simulator.stop()

    # -- caller side ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> HmiServer:
        self.thread.start()
        if not self.ready.wait(timeout):
            raise TimeoutError("the HMI server did not start")
        if self.error is not None:
            raise RuntimeError("the HMI server failed to start") from self.error
        return self

    def stop(self) -> None:
        if self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the server's loop (bus publishes, simulator writes) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)



@contextmanager
def demo_users_server(data_dir: Path,
                      prepare: Callable[[Plant, Path, Simulator], None] | None = None) -> Iterator[HmiServer]:
    """A server with the real authentication and the demo users (their documented passwords), stopped on exit."""
    srv = HmiServer(data_dir, {}, auth=True, prepare=prepare).start()
    try:
        assert srv.auth is not None
        bootstrap_demo_users(srv.auth)
        yield srv
    finally:
        srv.stop()
