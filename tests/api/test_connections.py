"""The web server's connection limits (item 9), on a real uvicorn server over loopback TCP: a request head must
arrive in time (dribbling does not extend it), a stalled body is closed, one address holds at most its share,
a full server makes room by closing the slow client that waited longest and refuses only when every connection
is busy, and the open-file limit is raised at start."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from plantlink.api.connections import ConnectionLimits, budget
from plantlink.api.server import ServerHandle, SslFiles, serve
from plantlink.auth.tls import self_signed
from plantlink.runtime import Runtime

LIMITS = ConnectionLimits(header_timeout_s=1.0, body_idle_timeout_s=1.0, keep_alive_s=1.0, per_address=5,
                          max_connections=12)
#: for the tests that fill the server: slow clients are not timed out meanwhile
PATIENT = ConnectionLimits(header_timeout_s=60, per_address=5, max_connections=12)
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
async def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
def limits() -> ConnectionLimits:
    return LIMITS


@pytest.fixture
async def server(runtime: Runtime, gate: asyncio.Event, limits: ConnectionLimits) -> AsyncIterator[ServerHandle]:
    def hook(app: FastAPI) -> None:
        @app.get("/wait")
        async def wait() -> dict[str, bool]:  # busy until the test opens the gate
            await gate.wait()
            return {"ok": True}

        @app.post("/echo")
        async def echo(body: dict[str, Any]) -> dict[str, Any]:
            return body

    handle = await serve(runtime, "127.0.0.1", 0, app_hook=hook, limits=limits)
    try:
        yield handle
    finally:
        gate.set()
        await handle.stop()


async def connect(server: ServerHandle, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader,
                                                                             asyncio.StreamWriter]:
    return await asyncio.open_connection(server.host, server.port, local_addr=(source, 0))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not within ``seconds``)."""
    return await asyncio.wait_for(reader.read(), seconds)


async def get_ok(server: ServerHandle, source: str = "127.0.0.1") -> None:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=5) as c:
        assert (await c.get("/healthz")).status_code == 200


async def test_a_head_that_does_not_arrive_in_time_is_closed_with_408(server: ServerHandle) -> None:
    silent, quiet = await connect(server)
    reader, writer = await connect(server)
    writer.write(PARTIAL)
    t0 = time.monotonic()
    answer = await closed_within(reader, 10)
    assert answer.startswith(b"HTTP/1.1 408") and b'"code": "timeout"' in answer
    assert LIMITS.header_timeout_s * 0.9 <= time.monotonic() - t0 < LIMITS.header_timeout_s + 5
    assert (await closed_within(silent, 10)).startswith(b"HTTP/1.1 408")  # nothing sent at all: the same
    quiet.close()


async def test_dribbling_a_head_does_not_extend_its_deadline(server: ServerHandle) -> None:
    reader, writer = await connect(server)
    t0 = time.monotonic()

    async def dribble() -> None:
        for byte in PARTIAL * 10:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)

    task = asyncio.create_task(dribble())
    try:
        assert (await closed_within(reader, 10)).startswith(b"HTTP/1.1 408")
    finally:
        task.cancel()
    assert time.monotonic() - t0 < LIMITS.header_timeout_s + 5


async def test_a_stalled_body_is_closed_and_a_kept_alive_connection_times_out(server: ServerHandle) -> None:
    reader, writer = await connect(server)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    assert b"HTTP/1.1 2" not in await closed_within(reader, 10)  # closed, nothing served
    reader, writer = await connect(server)
    body = json.dumps({"a": 1}).encode()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    t0 = time.monotonic()
    answer = await closed_within(reader, 10)  # answered, then closed after the keep-alive time
    assert answer.startswith(b"HTTP/1.1 200") and json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"a": 1}
    assert time.monotonic() - t0 < LIMITS.keep_alive_s + 5


async def test_one_address_holds_at_most_its_share(server: ServerHandle) -> None:
    held = [await connect(server, "127.0.0.2") for _ in range(LIMITS.per_address)]
    reader, writer = await connect(server, "127.0.0.2")
    t0 = time.monotonic()
    answer = await closed_within(reader, 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 429") and b"too_many_connections" in answer
    assert time.monotonic() - t0 >= LIMITS.refusal_delay_s * 0.9  # answered late: reconnecting at once is slow
    await get_ok(server, "127.0.0.3")  # another address is not concerned
    for _, w in held:
        w.close()


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("limits", [PATIENT])
async def test_a_full_server_closes_the_longest_waiting_slow_client(server: ServerHandle) -> None:
    assert PATIENT.max_connections is not None and server.guard is not None
    slow = []
    for i in range(PATIENT.max_connections):  # every slot taken by a slow client, from several addresses
        r, w = await connect(server, f"127.0.1.{1 + i // 4}")
        w.write(PARTIAL)
        slow.append((r, w))  # (a writer that is dropped closes its connection)
        await until(lambda n=i + 1: len(server.guard) == n)  # type: ignore[arg-type,union-attr]
    await get_ok(server, "127.0.0.9")  # a client that sends its request at once gets in
    assert await closed_within(slow[0][0], 2) == b""  # the oldest slow client made room (no answer)
    assert server.guard.stats["evicted"] >= 1
    # an address that already holds the most connections only competes with itself: refused, nobody evicted
    await until(lambda: len(server.guard) == PATIENT.max_connections - 1)  # type: ignore[arg-type]
    refill = await connect(server, "127.0.1.1")
    refill[1].write(PARTIAL)
    await until(lambda: len(server.guard) == PATIENT.max_connections)  # type: ignore[arg-type]
    r, w = await connect(server, "127.0.1.2")
    evicted = server.guard.stats["evicted"]
    answer = await closed_within(r, 5)
    w.close()
    assert answer.startswith(b"HTTP/1.1 503") and server.guard.stats["evicted"] == evicted


@pytest.mark.parametrize("limits", [PATIENT])
async def test_only_when_every_connection_is_busy_is_a_new_one_refused(server: ServerHandle,
                                                                        gate: asyncio.Event) -> None:
    assert PATIENT.max_connections is not None and server.guard is not None
    busy = []
    for i in range(PATIENT.max_connections):
        r, w = await connect(server, f"127.0.2.{1 + i // 4}")
        w.write(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        busy.append((r, w))
    await until(lambda: len(server.guard) == PATIENT.max_connections and not server.guard.waiting_count)  # type: ignore
    reader, writer = await connect(server, "127.0.0.9")
    answer = await closed_within(reader, 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"server_full" in answer
    gate.set()
    for r, _ in busy:
        assert (await asyncio.wait_for(r.readuntil(b"\r\n"), 5)).startswith(b"HTTP/1.1 200")
    await get_ok(server, "127.0.0.9")


@pytest.fixture
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SslFiles:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    return SslFiles(str(cert), str(key))


async def test_over_tls_a_handshake_and_a_head_must_arrive_in_time(runtime: Runtime, certificate: SslFiles) -> None:
    def hook(app: FastAPI) -> None:
        @app.get("/scheme")
        async def scheme(request: Request) -> dict[str, str]:
            return {"scheme": request.url.scheme}  # https: cookies get their Secure flag

    handle = await serve(runtime, "127.0.0.1", 0, limits=LIMITS, ssl=certificate, app_hook=hook)
    try:
        assert handle.url.startswith("https://")
        async with httpx.AsyncClient(base_url=handle.url, verify=False, timeout=10) as c:
            r = await c.get("/scheme")
            assert r.json() == {"scheme": "https"} and r.headers["strict-transport-security"] == "max-age=31536000"
        no_hello, writer = await connect(handle)  # TCP only: the handshake never starts
        t0 = time.monotonic()
        assert await closed_within(no_hello, 10) == b""
        assert time.monotonic() - t0 < LIMITS.header_timeout_s + 5
        writer.close()
        client = ssl.create_default_context()
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(handle.host, handle.port, ssl=client)  # then silent
        assert (await closed_within(reader, 10)).startswith(b"HTTP/1.1 408")
        writer.close()
        assert handle.guard is not None and handle.guard.stats["timeout_head"] >= 1
    finally:
        await handle.stop()


def test_the_budget_keeps_descriptors_for_devices() -> None:
    b = budget(ConnectionLimits(), 1024, devices=10)
    assert b.max_connections + 2 * b.backlog + 256 + 20 <= 1024
    assert budget(ConnectionLimits(), 1_000_000).max_connections == ConnectionLimits().max_default


def test_the_open_file_limit_is_raised_at_start() -> None:
    """In a child whose soft limit is below its hard one (as systemd and shells often leave it)."""
    code = ("import resource, json; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096));"
            "from plantlink.api.connections import raise_open_file_limit;"
            "print(json.dumps([raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == [[4096, 4096], [4096, 4096]]
