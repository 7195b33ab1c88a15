"""Serve the API with uvicorn inside the caller's event loop.

    handle = await serve(runtime, "127.0.0.1", 8080)      # returns once the socket is bound
    handle.port                                          # the bound port (useful with port=0)
    await handle.stop()                                  # graceful: connections closed, hub stopped

The host application keeps its own signal handling (uvicorn's is disabled here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

from plantlink.api.app import create_app
from plantlink.api.connections import (
    ConnectionGuard,
    ConnectionLimits,
    TrustedProxies,
    budget,
    guarded_protocol,
    raise_open_file_limit,
)
from plantlink.errors import PlantlinkError

if TYPE_CHECKING:
    from plantlink.runtime import Runtime

log = logging.getLogger(__name__)
#: sent with every response over TLS: browsers then use HTTPS only for this host for a year
HSTS = ("strict-transport-security", "max-age=31536000")
#: largest WebSocket message a client may send (the default of uvicorn is 16 MiB); the live stream answers
#: messages over its own 256 KiB with an error, larger ones close the socket (1009)
WS_MAX_MESSAGE = 1024 * 1024


@dataclass(frozen=True)
class SslFiles:
    """TLS for the API: a PEM certificate (chain) and its private key."""

    certfile: str
    keyfile: str
    password: str | None = None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # the host application owns the signals
        yield


class ServerHandle:
    """A running API server: ``app``, ``host``, ``port`` (bound), ``url``, ``await stop()``."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], app: FastAPI, host: str, port: int,
                 scheme: str):
        self.server, self.task, self.app, self.host, self.port = server, task, app, host, port
        self.url = f"{scheme}://{host}:{port}"
        self.guard: ConnectionGuard | None = None

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close connections (WebSocket clients get 1012/1001), wait for the task."""
        self.server.should_exit = True
        hub = getattr(self.app.state, "live", None)
        if hub is not None:
            await hub.stop()  # lets open streams end, so the graceful shutdown does not wait on them
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self.server.force_exit = True
            await self.task


async def serve(runtime: Runtime, host: str = "127.0.0.1", port: int = 8080, *, ssl: SslFiles | None = None,
                app_hook: Callable[[FastAPI], Any] | None = None, log_level: str = "warning",
                limits: ConnectionLimits | None = None, trusted_proxies: Sequence[str] = ()) -> ServerHandle:
    """Start the API for a started ``runtime``; returns once listening. ``app_hook(app)`` runs before the
    server starts: install authentication middleware, mount the HMI. Port 0 picks a free port.

    Connections are guarded (``plantlink.api.connections``: timeouts, a budget within the open-file limit, which
    is raised first, and a limit per address). ``X-Forwarded-For`` is believed only from ``trusted_proxies``
    (addresses or networks; none by default). With ``ssl``, every response carries HSTS."""
    limits = limits or ConnectionLimits()
    trusted = TrustedProxies(trusted_proxies)
    context = _ssl_context(ssl) if ssl is not None else None
    soft, _ = raise_open_file_limit()
    plan = budget(limits, soft, devices=len(runtime.plant.devices))
    guard = ConnectionGuard(limits, plan.max_connections, trusted, plan.tarpit)
    app = create_app(runtime)
    if app_hook is not None:
        app_hook(app)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", ws="websockets-sansio",
                            http=guarded_protocol(guard, context),  # type: ignore[arg-type]
                            access_log=False, timeout_graceful_shutdown=5,
                            ws_per_message_deflate=False,  # CPU over bandwidth on a plant LAN
                            ws_max_size=WS_MAX_MESSAGE, backlog=plan.backlog,
                            timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]
                            proxy_headers=bool(trusted), forwarded_allow_ips=list(trusted.entries) or None,
                            headers=[HSTS] if context is not None else None)
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="plantlink-api")
    try:
        while not server.started:
            if task.done():
                exc = task.exception()
                raise PlantlinkError(f"the API could not listen on {host}:{port}: {exc or 'server exited'}")
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:  # stopped while starting: the server must not outlive the runtime
        await _stop_starting(server, task)
        raise
    bound = port
    for srv in server.servers:
        for sock in srv.sockets:
            bound = int(sock.getsockname()[1])
            break
    log.info("web server on %s:%d: at most %d connections (%d per address), open-file limit %d", host, bound,
             plan.max_connections, limits.per_address, soft)
    handle = ServerHandle(server, task, app, host, bound, "https" if ssl else "http")
    handle.guard = guard
    return handle


def _ssl_context(files: SslFiles) -> ssl_module.SSLContext:
    """A TLS 1.2+ server context for the certificate and key (the guarded protocol does the handshakes)."""
    ctx = ssl_module.create_default_context(ssl_module.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl_module.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(files.certfile, files.keyfile, files.password)
    except (OSError, ssl_module.SSLError) as exc:
        raise PlantlinkError(f"cannot use TLS certificate {files.certfile} with key {files.keyfile}: {exc}") from None
    return ctx


async def _stop_starting(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop a server that is still starting (a signal during start-up), gracefully: the application's lifespan
    ends too. With a forced exit, or when stopped before it listened, uvicorn leaves the lifespan waiting, to
    be cancelled as the process ends with a traceback in the log ("Exception in 'lifespan' protocol")."""
    server.should_exit = True
    _, pending = await asyncio.wait([task], timeout=10)
    if pending:
        server.force_exit = True
        await asyncio.wait([task], timeout=5)
    lifespan = getattr(server, "lifespan", None)
    if lifespan is not None and not lifespan.shutdown_event.is_set():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lifespan.shutdown(), 5)
