"""What ``plantlink run`` and ``plantlink demo`` do, as coroutines that tests and embedding code can call."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from plantlink.datadir import private_files, secure_data_dir
from plantlink.errors import PlantlinkError
from plantlink.model import Plant, parse_plant
from plantlink.runtime import Runtime
from plantlink.wal import WalSettings

if TYPE_CHECKING:
    from plantlink.sim import Simulator

log = logging.getLogger("plantlink.app")
#: The demo keeps its simulated machines' counters here, as PLCs keep theirs when plantlink restarts.
SIM_STATE = "sim-state.json"


@dataclass(frozen=True)
class ServeOptions:
    """How the API and HMI are served: ``api=False`` runs headless."""

    api: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    demo_users: bool = False
    #: addresses or networks of reverse proxies whose X-Forwarded-For is believed (none by default)
    trusted_proxies: tuple[str, ...] = ()


def _say(announce: bool, message: str) -> None:
    if announce:
        print(message, file=sys.stderr, flush=True)


async def _wait(duration: float) -> None:
    if duration > 0:
        await asyncio.sleep(duration)
    else:
        await asyncio.Event().wait()


def _auth_hook(runtime: Runtime, opts: ServeOptions, announce: bool) -> Any:
    """Authentication (deny by default), first-run admin / demo users, and the HMI, on the API's app."""
    from plantlink.auth import AuthService, AuthSettings, bootstrap_demo_users, install_auth

    assert runtime.store is not None
    auth = AuthService(runtime.store.engine, runtime.data_dir, AuthSettings(secure_cookies=opts.tls or None))
    if opts.demo_users:
        bootstrap_demo_users(auth)
    auth.ensure_admin(stream=sys.stderr)

    def hook(app: FastAPI) -> None:
        install_auth(app, auth, csrf_exempt=["/hmi/_nicegui"])
        _mount_hmi(app, runtime)

    return hook


def _mount_hmi(app: FastAPI, runtime: Runtime) -> None:
    try:
        from plantlink.hmi import mount_hmi
    except ImportError:  # the HMI is optional in headless installs
        return
    mount_hmi(app, runtime)

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse("/hmi/", status_code=303)


async def _serve(runtime: Runtime, opts: ServeOptions, announce: bool) -> Any:
    from plantlink.api.server import SslFiles, serve

    ssl = None
    if opts.tls:
        from plantlink.auth import tls_args

        args = tls_args(runtime.data_dir, opts.tls_cert, opts.tls_key)
        ssl = SslFiles(args["ssl_certfile"], args["ssl_keyfile"])
    handle = await serve(runtime, opts.host, opts.port, ssl=ssl, app_hook=_auth_hook(runtime, opts, announce),
                         trusted_proxies=opts.trusted_proxies)
    _say(announce, f"plantlink: open {handle.url}/ in a browser (API: {handle.url}/docs)")
    if opts.demo_users:
        from plantlink.auth import DEMO_USERS

        users = ", ".join(f"{name} / {pw}" for name, (_, pw) in DEMO_USERS.items())
        _say(announce, f"demo users (user / password): {users}")
    return handle


async def run_plant(
    plant: Plant,
    data_dir: str | Path,
    *,
    duration: float = 0.0,
    announce: bool = True,
    serve: ServeOptions | None = None,
    wal: WalSettings | None = None,
    until: Callable[[Runtime], Awaitable[Any]] | None = None,
    store_url: str | None = None,
    historian: str | None = None,
) -> dict[str, Any]:
    """Run connectors, engines, historian (and the API/HMI unless ``serve.api`` is false) until ``duration``
    elapses (or forever), or until ``until(runtime)`` returns when given; then stop cleanly and return the
    status. ``wal``: the durability settings (default: a write-ahead log with 20 ms group commit). The data
    directory is private (0700, files 0600: see ``plantlink.datadir``); so is every file the process creates
    meanwhile. ``store_url``: the relational store (default: SQLite under ``data_dir``). ``historian``: the backend
    or ClickHouse URL (``Runtime``), over the model's ``historian:``."""
    with private_files():
        return await _run_plant(plant, data_dir, duration, announce, serve or ServeOptions(api=False), wal, until,
                                store_url, historian)


async def _run_plant(plant: Plant, data_dir: str | Path, duration: float, announce: bool, opts: ServeOptions,
                     wal: WalSettings | None, until: Callable[[Runtime], Awaitable[Any]] | None,
                     store_url: str | None = None, historian: str | None = None) -> dict[str, Any]:
    secure_data_dir(data_dir)
    runtime = Runtime(plant, data_dir, wal=wal, store_url=store_url, historian=historian)
    handle = None
    try:  # a stop (a signal cancels this coroutine) while starting still stops cleanly what has started
        await runtime.start()
        _say(announce, f"plantlink: {len(plant.tags)} tags from {len(runtime.connectors)} devices")
        _say(announce, f"historian: {runtime.historian_where}")
        if opts.api:
            handle = await _serve(runtime, opts, announce)
        await (until(runtime) if until is not None else _wait(duration))
    finally:
        if handle is not None:
            await handle.stop()
        await runtime.stop()
    status = runtime.status()
    if handle is not None:
        status["api"] = handle.url
    return status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoHooks(Protocol):
    """What embedding code (tests) may do around a demo run."""

    async def simulator_started(self, simulator: Simulator) -> None:
        """The simulated plant serves; plantlink has not started yet."""

    async def running(self, runtime: Runtime, simulator: Simulator) -> None:
        """plantlink runs; the demo stops cleanly when this returns."""


async def run_demo(
    plant_file: Path,
    data_dir: str | Path,
    *,
    duration: float = 0.0,
    speed: float = 1.0,
    seed: int = 1,
    announce: bool = True,
    serve: ServeOptions | None = None,
    wal: WalSettings | None = None,
    hooks: DemoHooks | None = None,
) -> dict[str, Any]:
    """Start the simulated plant on free loopback ports, then run plantlink against it. The simulated machines
    keep their counters across runs on the same data directory (``SIM_STATE``), as PLCs do when plantlink
    restarts."""
    from plantlink.sim import Simulator, plant_with_ports

    text = plant_file.read_text(encoding="utf-8")
    base = parse_plant(text, str(plant_file))
    check_demo_extras(base)
    ports = {dev: free_port() for dev in base.devices}
    plant = parse_plant(plant_with_ports(text, ports), str(plant_file))
    simulator = Simulator(plant, seed=seed, speed=speed)
    state_file = Path(data_dir) / SIM_STATE
    _restore(simulator, state_file)
    await simulator.start()
    for dev, ep in simulator.endpoints().items():
        _say(announce, f"simulator: {dev} at {ep}")
    try:
        until = None
        if hooks is not None:
            await hooks.simulator_started(simulator)
            until = _session(hooks, simulator)
        status = await run_plant(plant, data_dir, duration=duration, announce=announce, serve=serve, wal=wal,
                                 until=until)
    finally:
        await simulator.stop()
        _keep(simulator, state_file)
    status["simulator"] = {"speed": speed, "seed": seed, "endpoints": simulator.endpoints()}
    return status


def check_demo_extras(plant: Plant) -> None:
    """Raise PlantlinkError, naming the ``demo`` extra, when a package the demo plant's PLCs need (the S7 and
    Logix simulators and connectors) is not installed."""
    from plantlink.sim.runner import missing_packages

    missing = missing_packages(plant)
    if missing:
        raise PlantlinkError(f"the demo's S7 and Logix PLCs need the 'demo' extra (missing: "
                             f"{', '.join(p for p, _ in missing)}): pip install 'plantlink[demo]' (or make demo)")


def _session(hooks: DemoHooks, simulator: Simulator) -> Callable[[Runtime], Awaitable[None]]:
    async def until(runtime: Runtime) -> None:
        await hooks.running(runtime, simulator)

    return until


def _restore(simulator: Simulator, state_file: Path) -> None:
    if not state_file.is_file():
        return
    try:
        simulator.sim.restore(json.loads(state_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("simulator: cannot read its kept counters from %s (%s): starting from its seed", state_file,
                    exc)


def _keep(simulator: Simulator, state_file: Path) -> None:
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(simulator.sim.kept()), encoding="utf-8")
    except OSError as exc:
        log.warning("simulator: cannot keep its counters in %s: %s", state_file, exc)
