"""An export too large to hold is streamed: the memory of the serving process stays bounded while a real HTTP
client reads millions of rows (hundreds of MB of CSV) from a real server, and every row arrives."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import psutil

from plantlink.api.server import ServerHandle
from plantlink.runtime import Runtime
from plantlink.samples import numeric_batch
from tests.api.conftest import principal_header
from tests.peak import Peak
from tests.waiting import wait_for

TAG = "windsor/a1/l1/m2/speed"
ROWS = 1_500_000
STEP_US = 100_000  # ten samples a second: 1.5 M samples span 1.7 days
T0 = 1_773_100_800_000_000  # 2026-03-10T00:00:00Z


def _fill(rt: Runtime) -> None:
    assert rt.historian is not None
    tid = rt.tag_ids[TAG]
    for lo in range(0, ROWS, 200_000):
        n = min(200_000, ROWS - lo)
        ts = T0 + (lo + np.arange(n, dtype=np.int64)) * STEP_US
        rt.historian.write(numeric_batch(np.full(n, tid), ts, np.arange(lo, lo + n, dtype=np.float64), 192))
    rt.historian.flush()


async def test_a_large_export_streams_in_bounded_memory(runtime: Runtime, server: ServerHandle) -> None:
    _fill(runtime)
    url = f"http://127.0.0.1:{server.port}/api/v1/export/trend"
    params = {"tag": TAG, "start": T0 // 1000, "end": (T0 + ROWS * STEP_US) // 1000, "format": "csv"}
    headers = principal_header("ann:windsor=viewer")
    async with httpx.AsyncClient(headers=headers, timeout=120) as c:
        size = (await c.get(url, params=params | {"dry_run": "true"})).json()
        assert size["rows"] == ROWS and size["bytes_estimate"] > 100_000_000
        base = psutil.Process().memory_info().rss
        lines, total, last = 0, 0, b""
        with Peak() as peak:
            async with c.stream("GET", url, params=params) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_bytes():
                    total += len(chunk)
                    lines += chunk.count(b"\n")
                    last = (last + chunk)[-200:]
    assert lines == ROWS + 1  # the header, then every sample
    assert float(last.rstrip().rsplit(b"\n", 1)[-1].split(b",")[3]) == ROWS - 1  # the last sample, last
    grew = peak.peak - base
    assert total > 130_000_000, total
    # the whole file held would be 156 MB more; with DuckDB's memory_limit at 32MB (the default since 4eb46b7) the
    # process grows by 65-67 MB during the stream (below 64 MB at 64MB). That growth does not follow the file's size
    # (a scratch copy of this test with 0.75, 1.5 and 3 M rows, 2026-11-28: 71, 67 and 59 MB for files of 78, 156
    # and 314 MB): a fixed working set (DuckDB's pool, a batch in Arrow and in CSV, the client's buffers), no leak
    assert grew < 80_000_000, f"the server's memory grew by {grew / 1e6:.0f} MB for a {total / 1e6:.0f} MB file"


async def test_an_export_the_client_leaves_is_audited_as_incomplete(runtime: Runtime, server: ServerHandle) -> None:
    _fill(runtime)
    url = f"http://127.0.0.1:{server.port}/api/v1/export/trend"
    params = {"tag": TAG, "start": T0 // 1000, "end": (T0 + ROWS * STEP_US) // 1000, "format": "csv"}
    async with httpx.AsyncClient(headers=principal_header("ann:windsor=viewer"), timeout=60) as c, \
            c.stream("GET", url, params=params) as r:
        assert r.status_code == 200
        async for _ in r.aiter_bytes():
            break  # the person cancels the download after its first chunk
    assert runtime.audit is not None
    log = runtime.audit

    def left() -> list[Any]:
        return list(log.query(kind="export.trend", actor="ann", newest_first=True, limit=5))

    found = await wait_for(left, 30, "the audit record of the export left early")
    d = found[0].details
    assert d["complete"] is False and 0 < d["rows"] < ROWS
