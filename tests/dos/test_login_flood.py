"""Item 7: a flood of bad logins (200 at once, each retried as soon as it is answered, from 40 addresses, at the
default argon2 cost) delays authenticated API calls by at most 100 ms at p99, the server's memory stays bounded,
and logins beyond the pool and its queue are refused with 503 and Retry-After.

The server is ``plantlink run`` in a child process and the flood another process at the lowest CPU priority (in
a plant the attacker is another machine); this process times one authenticated client's requests (``GET
/api/v1/values``, which looks the session up like every API call) in windows without and with the flood,
alternating. The bound is on the delay the flood adds at p99, measured against the machine as it is during the
test (the suite runs on loaded machines). ``bench/dos.py`` prints the figures.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.dos.harness import (
    TAG,
    VARIABLES,
    flood_result,
    free_port,
    login,
    percentile,
    start_flood,
    start_plantlink,
)
from tests.servers import OpcUaTestServer

#: alternating windows without and with the flood: two of each (250 to 400 timed requests on each side on a loaded
#: 2-core machine, so the p99 is the 3rd or 4th slowest, not one outlier; more rounds repeat the same measurement,
#: each with a flood whose queue of argon2 checks must drain before the next window)
ROUNDS = 2
WINDOW_S = 6.0
DELAY_BOUND_S = 0.100
#: argon2 takes 64 MiB a check; two at a time plus the rest of the server stay far below the 2.4 GiB that the
#: unbounded checks took
MEMORY_GROWTH_BOUND = 512 * 2**20


async def timed_requests(url: str, cookies: httpx.Cookies, until: float, pause: float = 0.02) -> list[float]:
    took = []
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60) as c:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            r = await c.get("/api/v1/values", params={"tag": TAG})
            took.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            await asyncio.sleep(pause)
    return took


@dataclass
class Measured:
    baseline: list[float]
    flooded: list[float]
    flood: dict[str, Any]
    rss_before: int
    rss_peak: int

    def p99(self, which: str) -> float:
        return percentile(getattr(self, which), 99)


async def measure(tmp_path: Path, concurrency: int = 200, addresses: int = 40, rounds: int = ROUNDS) -> Measured:
    """Run the server; time requests in ``rounds`` alternating windows without and with the flood (so that both
    see the machine's load alike); watch the server's memory."""
    server = OpcUaTestServer(free_port(), VARIABLES)
    await server.start()
    child = start_plantlink(tmp_path, server.port)
    baseline: list[float] = []
    flooded: list[float] = []
    sent: Counter[str] = Counter()
    try:
        cookies = login(child.url)
        proc = psutil.Process(child.proc.pid)
        await timed_requests(child.url, cookies, time.monotonic() + 2)  # warm up
        rss_before = peak = proc.memory_info().rss
        for _ in range(rounds):
            baseline += await timed_requests(child.url, cookies, time.monotonic() + WINDOW_S)
            flood = start_flood(child.url, WINDOW_S + 1, concurrency, addresses)

            async def watch_memory(flood: subprocess.Popen[bytes] = flood) -> None:
                nonlocal peak
                while flood.poll() is None:
                    peak = max(peak, proc.memory_info().rss)
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch_memory())
            flooded += await timed_requests(child.url, cookies, time.monotonic() + WINDOW_S)
            result = await asyncio.to_thread(flood_result, flood)
            await watcher
            sent.update(result["statuses"])  # (the flood ends when its last request is answered: nothing waits)
    finally:
        child.interrupt()
        await server.stop()
    return Measured(baseline, flooded, {"sent": sum(sent.values()), "statuses": dict(sent)}, rss_before, peak)


@pytest.mark.timeout(600)  # a real server in a child process, on a loaded machine
async def test_a_login_flood_does_not_delay_authenticated_calls(tmp_path: Path) -> None:
    """Measured twice when the first measurement misses the bound: the machine's own load is not under the test's
    control (a spike in one window shows as delay); a real regression misses both (before the fix, the
    authenticated request timed out after 60 s)."""
    for attempt in (1, 2):
        (tmp_path / f"run{attempt}").mkdir()
        m = await measure(tmp_path / f"run{attempt}")
        added = m.p99("flooded") - m.p99("baseline")
        print(f"attempt {attempt}: authenticated p99 {m.p99('baseline') * 1000:.1f} ms without the flood, "
              f"{m.p99('flooded') * 1000:.1f} ms with it ({len(m.baseline)} and {len(m.flooded)} requests); "
              f"flood {m.flood}; rss {m.rss_before / 2**20:.0f} -> peak {m.rss_peak / 2**20:.0f} MiB")
        statuses = m.flood["statuses"]
        assert statuses.get("503", 0) > 0, statuses  # the pool and its queue were full: refused at once
        assert set(statuses) <= {"401", "429", "503"}, statuses  # every flood request got a clear answer
        assert len(m.flooded) >= 100
        assert m.rss_peak - m.rss_before <= MEMORY_GROWTH_BOUND, f"{(m.rss_peak - m.rss_before) / 2**20:.0f} MiB"
        if added <= DELAY_BOUND_S:
            return
    raise AssertionError(f"the flood added {added * 1000:.1f} ms at p99 (twice over {DELAY_BOUND_S * 1000:.0f} ms)")
