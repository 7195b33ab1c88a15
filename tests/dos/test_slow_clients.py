"""Item 9: 2,000 connections that never finish their headers (from 40 addresses, re-opened as the server closes
them, dribbling a byte now and then) against ``plantlink run`` whose open-file limit is 1,024 (soft and hard, so
it cannot raise it): normal authenticated requests keep being answered quickly, samples keep flowing from the
OPC UA server, and the OPC UA connector never drops (right after the attack a new value still arrives on the
connection it had before, and the running server's health report shows it connected, with no reconnection).

Before: the slow connections took every descriptor; normal requests timed out and the connector lost its
server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dos.harness import (
    TAG,
    VARIABLES,
    flood_result,
    free_port,
    login,
    raise_own_nofile,
    start_plantlink,
    start_slowloris,
)
from tests.servers import OpcUaTestServer

SLOW = 2000
ADDRESSES = 40
ATTACK_S = 25.0
#: a normal request during the attack must be answered within this: generous, for a loaded machine (with the
#: open-file limit at 1,024 the listen queue is short and a new client's SYN may need a retransmission, 1 s then
#: 3 s); before the fix requests were not answered at all (30 s timeouts)
ANSWER_BOUND_S = 10.0


async def first_good_value(url: str, cookies: httpx.Cookies) -> None:
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as c:
        for _ in range(300):
            (row,) = (await c.get("/api/v1/values", params={"tag": TAG})).json()["values"]
            if row["quality"] == "good":
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"no good value from the OPC UA server: {row}")


async def normal_requests(url: str, cookies: httpx.Cookies, ua: OpcUaTestServer, until: float) -> tuple[
        list[float], list[float]]:
    """A new client connection every 0.5 s reading the tag's latest value, while the OPC UA server's value rises
    by one each time: the request times and the values seen."""
    took, seen = [], []
    value = 100.0
    while time.monotonic() < until:
        value += 1
        await ua.set("Temp", value)
        t0 = time.perf_counter()
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as c:
            r = await c.get("/api/v1/values", params={"tag": TAG})
        took.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        (row,) = r.json()["values"]
        assert row["quality"] == "good", row
        seen.append(float(row["value"]))
        await asyncio.sleep(0.5)
    return took, seen


async def connector_after_attack(url: str, cookies: httpx.Cookies, ua: OpcUaTestServer) -> dict[str, Any]:
    """Once the attack is over: a new value reaches plantlink (the connection still delivers; one lost and not yet
    noticed would not, one re-made would count a reconnection), then the running server's health report of the
    connector."""
    value = -1.0
    await ua.set("Temp", value)
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as c:
        for _ in range(300):
            (row,) = (await c.get("/api/v1/values", params={"tag": TAG})).json()["values"]
            if row["quality"] == "good" and float(row["value"]) == value:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the value set after the attack did not arrive: {row}")
        r = await c.get("/api/v1/health")
        assert r.status_code == 200, r.text
    (device,) = [d for d in r.json()["devices"] if d["device"] == "ua"]
    return dict(device)


@dataclass
class Measured:
    took: list[float]
    seen: list[float]
    counts: dict[str, int]
    connector: dict[str, Any]
    exit_code: int | None
    log: str


async def measure(tmp_path: Path, slow: int = SLOW, seconds: float = ATTACK_S) -> Measured:
    """``plantlink run`` limited to 1,024 descriptors, fed by an OPC UA server, under ``slow`` slow connections for
    ``seconds``: the normal requests' times and values, the attack's counts, the run's final status."""
    assert raise_own_nofile() >= 500, "this test needs an open-file limit above 500"  # (slowloris raises its own)
    ua = OpcUaTestServer(free_port(), VARIABLES)
    await ua.start()
    child = start_plantlink(tmp_path, ua.port, nofile=(1024, 1024))
    try:
        cookies = login(child.url)
        await first_good_value(child.url, cookies)  # connected before the attack
        attack = await asyncio.to_thread(start_slowloris, child.url, slow, seconds, ADDRESSES)
        took, seen = await normal_requests(child.url, cookies, ua, time.monotonic() + seconds - 5)
        counts = await asyncio.to_thread(flood_result, attack)
        connector = await connector_after_attack(child.url, cookies, ua)
    finally:
        await asyncio.to_thread(child.interrupt)
        await ua.stop()
    return Measured(took, seen, counts, connector, child.proc.returncode, child.log_text())


@pytest.mark.timeout(300)  # a real server in a child process, on a loaded machine
async def test_slow_clients_do_not_starve_requests_nor_devices(tmp_path: Path) -> None:
    m = await measure(tmp_path)
    print(f"slow connections {m.counts}; normal requests: {len(m.took)}, max {max(m.took):.2f} s; "
          f"connector {m.connector}")
    assert m.counts["opened"] >= SLOW
    assert len(m.took) >= 10 and max(m.took) <= ANSWER_BOUND_S, m.took
    assert m.seen[-1] >= m.seen[0] + 5, m.seen  # the values kept following the device
    assert m.connector["status"] == "connected" and m.connector["reconnects"] == 0, m.connector
    assert m.exit_code == 0, m.log[-3000:]  # and it stopped cleanly when asked
