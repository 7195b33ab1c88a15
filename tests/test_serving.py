"""The parts of `plantlink serve` on their own: the DuckDB historian opened read-only, and the poller that feeds a
replica's live values from the historian's latest values (tests/store/test_replicas.py runs two processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from plantlink.bus import open_bus
from plantlink.errors import HistorianError
from plantlink.historian import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import SAMPLE_SCHEMA, now_us
from plantlink.services.latest import LatestValues
from plantlink.serving import LatestPoller
from tests.waiting import wait_for


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
