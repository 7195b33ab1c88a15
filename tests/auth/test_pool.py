"""The login pool (item 7): password checks on their own few threads with a bounded queue; beyond it a login is
answered 503 at once with Retry-After and the JSON envelope, before anything else runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from plantlink.auth import AuthService
from plantlink.auth.pool import LoginPool
from plantlink.errors import Busy
from tests.auth.conftest import FAST, Clock
from tests.auth.test_web import make_app

PW = "a-good-password-1"


async def test_at_most_workers_run_and_at_most_queue_wait() -> None:
    pool = LoginPool(workers=2, queue=3)
    gate = threading.Event()
    running, most = 0, 0
    lock = threading.Lock()

    def job() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(10)
        with lock:
            running -= 1
        return threading.current_thread().name

    tasks = [asyncio.create_task(pool.run(job)) for _ in range(10)]
    await asyncio.sleep(0.2)
    refused = [t for t in tasks if t.done()]
    assert len(refused) == 5 and all(isinstance(t.exception(), Busy) for t in refused)
    assert pool.in_flight == 5 and pool.refused == 5
    gate.set()
    names = await asyncio.gather(*(t for t in tasks if t not in refused))
    assert most == 2 and all(n.startswith("plantlink-login") for n in names)
    assert pool.in_flight == 0
    pool.close()


async def test_a_waiting_login_whose_client_left_gives_its_place_back() -> None:
    pool = LoginPool(workers=1, queue=1)
    gate = threading.Event()
    first = asyncio.create_task(pool.run(gate.wait, 10))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(pool.run(lambda: "ran"))
    await asyncio.sleep(0.05)
    assert pool.full()
    second.cancel()
    await asyncio.sleep(0.05)
    assert pool.in_flight == 1 and not pool.full()
    gate.set()
    await first
    assert pool.in_flight == 0
    pool.close()


@pytest.fixture
async def blocked(tmp_path, clock: Clock) -> AsyncIterator[tuple[AuthService, threading.Event]]:  # type: ignore[no-untyped-def]
    """A service whose pool has one worker and no queue, and whose password check waits for the event."""
    svc = AuthService.open(tmp_path / "data", settings=replace(FAST, login_workers=1, login_queue=0,
                                                                 refusal_delay_s=0.3), clock=clock)
    svc.create_user("alice", {"windsor": "viewer"}, "t", PW)
    gate = threading.Event()
    verify = svc.passwords.verify

    def slow_verify(stored: str, password: str) -> bool:
        assert threading.current_thread().name.startswith("plantlink-login")  # never the default pool
        gate.wait(10)
        return verify(stored, password)

    svc.passwords.verify = slow_verify  # type: ignore[method-assign]
    yield svc, gate
    gate.set()
    svc.close()


async def test_a_login_beyond_the_pool_is_answered_503_at_once(blocked: tuple[AuthService, threading.Event]) -> None:
    svc, gate = blocked
    transport = httpx.ASGITransport(app=make_app(svc), client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://plant.test", timeout=30) as c:
        first = asyncio.create_task(c.post("/api/v1/auth/login", json={"user": "alice", "password": PW}))
        while not svc.login_pool.full():
            await asyncio.sleep(0.01)
        for path, kind in (("/api/v1/auth/login", "json"), ("/login", "form")):
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            if kind == "json":
                r = await c.post(path, json={"user": "alice", "password": PW})
            else:
                r = await c.post(path, data={"user": "alice", "password": PW})
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
            if kind == "json":
                assert r.json() == {"error": {"status": 503, "code": "busy",
                                              "message": r.json()["error"]["message"]}}
                assert "try again in" in r.json()["error"]["message"]
            else:  # the login page again, with the message
                assert "<form" in r.text and "too many logins at once; try again in" in r.text
            assert 0.3 <= loop.time() - t0 < 5  # after the refusal delay, without waiting for the pool
        gate.set()
        assert (await first).status_code == 200
        assert (await c.post("/api/v1/auth/login", json={"user": "alice", "password": PW})).status_code == 200
