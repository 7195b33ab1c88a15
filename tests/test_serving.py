"""The parts of `plantlink serve` on their own: the DuckDB historian opened read-only, and the poller that feeds a
replica's live values from the historian's latest values, and one `plantlink serve` over a ClickHouse historian
(tests/store/test_replicas.py runs two processes on PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from plantlink.app import free_port
from plantlink.auth import AuthService
from plantlink.bus import open_bus
from plantlink.errors import HistorianError
from plantlink.historian import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import SAMPLE_SCHEMA, now_us
from plantlink.services.latest import LatestValues
from plantlink.serving import LatestPoller
from plantlink.store import Store, default_url
from tests.store.test_replicas import PASSWORD, PLANT, T0, T1
from tests.waiting import patience, wait_for, wait_until


def _batch(ids: list[int], ts: list[int], values: list[float]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"tag_id": ids, "ts": ts, "value": values, "quality": [192] * len(ids),
                                       "text": [None] * len(ids)}, schema=SAMPLE_SCHEMA)


def test_duckdb_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with pytest.raises(HistorianError, match="no such file"):
        DuckDBHistorian(path, read_only=True).open()
    t = now_us() - 10_000_000
    with DuckDBHistorian(path) as h:
        ids = h.register_tags([TagMeta("a/b", "", "float")])
        h.write(_batch([ids["a/b"]], [t], [4.5]))
    ro = DuckDBHistorian(path, read_only=True)
    ro.open()
    try:
        assert ro.tags().column("path").to_pylist() == ["a/b"]
        assert ro.latest([ids["a/b"]]).column("value").to_pylist() == [4.5]
        assert ro.raw(ids["a/b"], t, t + 1).column("value").to_pylist() == [4.5]
        with pytest.raises(HistorianError, match="read-only"):
            ro.write(_batch([ids["a/b"]], [t + 1], [5.0]))
    finally:
        ro.close()


class FakeLatest:
    """A historian's ``latest`` whose answer the test sets."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[int, float]] = {}

    def latest(self, tag_ids: Sequence[int]) -> pa.Table:
        ids = list(tag_ids)
        return pa.table({"tag_id": pa.array(ids, pa.uint32()),
                         "ts": pa.array([self.rows[i][0] if i in self.rows else None for i in ids],
                                        SAMPLE_SCHEMA.field("ts").type),
                         "value": [self.rows[i][1] if i in self.rows else None for i in ids],
                         "quality": pa.array([192] * len(ids), pa.uint8()), "text": pa.array([None] * len(ids),
                                                                                           pa.string())})


def test_the_poller_publishes_what_is_newer_than_the_cache() -> None:
    async def main() -> None:
        hist, latest, bus = FakeLatest(), LatestValues(), open_bus("inproc")
        seen: list[pa.RecordBatch] = []
        listener = latest.listen("test", at_once=seen.append)
        latest.start(bus)
        poller = LatestPoller(hist, latest, bus, [1, 2, 3], interval=3600)  # type: ignore[arg-type]
        t = now_us()
        hist.rows = {1: (t, 1.0), 2: (t, 2.0)}
        assert await poller.poll() == 2
        await wait_for(lambda: latest.table([1, 2]).column("value").to_pylist() == [1.0, 2.0], what="folded in")
        assert await poller.poll() == 0  # nothing newer: nothing published
        hist.rows[2] = (t + 1000, 2.5)
        hist.rows[3] = (t + 1000, 3.0)
        assert await poller.poll() == 2
        await wait_for(lambda: latest.table([1, 2, 3]).column("value").to_pylist() == [1.0, 2.5, 3.0],
                       what="the newer values folded in")
        await wait_for(lambda: sum(b.num_rows for b in seen) == 4, what="the live stream's listener saw them")
        assert sorted(seen[-1].column("tag_id").to_pylist()) == [2, 3]
        listener.close()
        await latest.stop()

    asyncio.run(main())


WRITE_CLICKHOUSE = """
import sys
import pyarrow as pa
from plantlink.historian import TagMeta, open_historian
from plantlink.samples import SAMPLE_SCHEMA
url, t = sys.argv[1], int(sys.argv[2])
h = open_historian("clickhouse", url=url)
ids = h.register_tags([TagMeta("s1/a1/l1/m1/t0", "", "float"), TagMeta("s1/a1/l1/m1/t1", "", "float")])
i0, i1 = ids["s1/a1/l1/m1/t0"], ids["s1/a1/l1/m1/t1"]
h.write(pa.RecordBatch.from_pydict({"tag_id": [i0, i0, i1], "ts": [t, t + 1000, t], "value": [1.0, 2.0, 7.0],
                                    "quality": [192] * 3, "text": [None] * 3}, schema=SAMPLE_SCHEMA))
h.flush()
h.close()
"""


def test_serve_reads_a_clickhouse_historian(tmp_path: Path) -> None:
    """`plantlink serve --historian chdb://DIR` on a ClickHouse store another process wrote (one after the other:
    the in-process engine is not shared between processes at once): the same tags, history and latest values."""
    url, t = f"chdb://{tmp_path / 'ch'}", now_us() - 60_000_000
    subprocess.run([sys.executable, "-c", WRITE_CLICKHOUSE, url, str(t)], check=True, timeout=patience(120))
    data = tmp_path / "d"
    store = Store.open(default_url(data))
    auth = AuthService(store.engine, data)
    auth.create_user("ada", {"*": "admin"}, "test", password=PASSWORD)
    auth.close()
    store.close()
    (tmp_path / "plant.yaml").write_text(PLANT, encoding="utf-8")
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "plantlink.cli", "serve", str(tmp_path / "plant.yaml"),
                             "--data-dir", str(data), "--historian", url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=log.open("w"),
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 120, "plantlink serve on ClickHouse")
        c = dict(httpx.post(f"{base}/api/v1/auth/login", json={"user": "ada", "password": PASSWORD}).cookies)
        values = httpx.get(f"{base}/api/v1/values", params={"tag": f"{T0},{T1}"}, cookies=c, timeout=30).json()
        assert {v["tag"]: v["value"] for v in values["values"]} == {T0: 2.0, T1: 7.0}, values
        raw = httpx.get(f"{base}/api/v1/history/raw", params={"tag": T0, "start": str(t // 1000 - 1),
                                                             "end": str(t // 1000 + 10)}, cookies=c, timeout=30)
        assert raw.json()["value"] == [1.0, 2.0], raw.text
    finally:
        proc.terminate()
        proc.wait(patience(30))
    assert "Traceback" not in log.read_text(), log.read_text()
