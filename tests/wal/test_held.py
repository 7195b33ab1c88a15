"""Delivery held on disk: a historian that cannot keep up (a real DuckDB store whose buffer says "full" until a
gate opens) while the log takes many batches. What waits in memory stays under the bound, every batch reaches
the historian once and in order after the gate opens, and a restart in the middle of held delivery loses and
doubles nothing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from plantlink.bus.inproc import InProcBus
from plantlink.historian import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.historian_writer import HistorianWriter
from plantlink.wal import WalSettings, WriteAheadLog
from plantlink.wal.segment import SegmentReader
from tests.waiting import wait_for
from tests.wal.test_log import batch, segments

ROWS = 500  # tags 1..ROWS in every batch
N = 400  # batches: about 5 MiB, five times the bound below
HOLD = 2**20


class GatedHistorian(DuckDBHistorian):
    """A real store whose write buffer reports full until ``gate`` is set: the runtime's writer then waits for
    room in a worker thread, and the batches it has not taken wait on the bus (or, held, in the log)."""

    def __init__(self, path: Path, gate: threading.Event):
        super().__init__(path)
        self.gate = gate
        self.seqs: list[int | None] = []

    def has_room(self) -> bool:
        return self.gate.is_set() and super().has_room()

    def wait_for_room(self) -> None:
        self.gate.wait()
        super().wait_for_room()

    def write(self, batch: pa.RecordBatch, seq: int | None = None) -> None:
        self.seqs.append(seq)
        super().write(batch, seq)


@dataclass
class Line:
    """The runtime's write path: log -> in-process bus -> ``HistorianWriter`` -> the gated historian."""

    h: GatedHistorian
    bus: InProcBus
    writer: HistorianWriter
    wal: WriteAheadLog

    def pending(self) -> int:
        """Bytes delivered (or on their way to the bus) and not yet taken by the historian writer."""
        return int(self.wal.status()["delivery_backlog_bytes"])


def open_store(d: Path, gate: threading.Event) -> GatedHistorian:
    h = GatedHistorian(d / "h.duckdb", gate)
    h.open()
    h.register_tags([TagMeta(f"t{i}") for i in range(1, ROWS + 1)])
    return h


@contextlib.asynccontextmanager
async def running(d: Path) -> AsyncIterator[Line]:
    gate = threading.Event()
    h = open_store(d, gate)
    bus = InProcBus()
    wal = WriteAheadLog(d / "wal", WalSettings(commit_ms=1, hold_bytes=HOLD, segment_bytes=256 * 1024))
    wal.open()
    writer = HistorianWriter(h, bus.subscribe("historian"), 0.05, after_flush=lambda: wal.checkpoint(h.durable_seq))
    writer.start()
    wal.start(bus.publish, h.durable_seq, bus.backlog_bytes)
    try:
        yield Line(h, bus, writer, wal)
    finally:
        gate.set()  # a failed test must not leave the writer's thread waiting
        await wal.stop()
        await writer.stop()
        h.close()


async def append_all(ln: Line, first: int = 0, n: int = N) -> int:
    """Append batches ``first..first+n-1``, each after the previous commit; return the most bytes that waited
    in memory for the historian after any commit."""
    peak = 0
    for k in range(first, first + n):
        assert ln.wal.append(batch(k, ROWS))
        await wait_for(lambda k=k: ln.wal.stats.committed_batches == k + 1, what=f"batch {k} committed")
        peak = max(peak, ln.pending())
    return peak


def expected_sums(n: int) -> np.ndarray:
    """Sum per tag of batches 0..n-1 (batch k holds k + tag / 1000 for each tag)."""
    tags = np.arange(1, ROWS + 1)
    return np.full(ROWS, n * (n - 1) / 2) + n * tags / 1000


def stored_sums(h: DuckDBHistorian) -> tuple[list[int], np.ndarray]:
    counts, sums = [], []
    for tid in range(1, ROWS + 1):
        values = h.raw(tid, 0, 2**62).column("value").to_numpy()
        counts.append(len(values))
        sums.append(values.sum())
    return counts, np.array(sums)


async def test_a_blocked_historian_holds_delivery_on_disk_within_the_bound_and_loses_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as line:
        await blocked_then_released(line)


async def blocked_then_released(line: Line) -> None:
    size = batch(0, ROWS).get_total_buffer_size()
    peak = await append_all(line)
    st = line.wal.status()
    assert st["delivery_held"] and st["committed_seq"] == N
    assert peak <= HOLD + size  # what waits in memory for the historian: at most the bound and one batch
    assert line.bus.backlog_bytes() <= HOLD + size
    assert line.writer.sub.pending() * size <= HOLD + size  # counted in batches too
    behind = N - st["delivered_seq"]
    assert behind > N // 2 and st["held_batches"] == behind and st["held_bytes"] > behind * size // 2
    assert st["holds"] == 1 and line.h.durable_seq == 0
    line.wal.checkpoint(N)  # a durable position beyond the delivered one deletes no held batch's segment
    on_disk = {s for p in segments(line.wal.dir) for s, _ in SegmentReader(p)}
    assert set(range(st["delivered_seq"] + 1, N + 1)) <= on_disk

    line.h.gate.set()
    await wait_for(lambda: line.h.durable_seq == N, timeout=60, what="every batch durable")
    assert line.h.seqs == list(range(1, N + 1))  # exactly once, in order, across the switch
    st = line.wal.status()
    assert not st["delivery_held"] and st["held_batches"] == 0 and st["held_bytes"] == 0
    assert st["read_back_batches"] == behind and st["unreadable_batches"] == 0

    read_back = st["read_back_batches"]
    await append_all(line, N, 5)  # caught up: delivered directly again
    await wait_for(lambda: line.h.durable_seq == N + 5, what="the later batches durable")
    assert line.wal.status()["read_back_batches"] == read_back
    assert line.h.seqs == list(range(1, N + 6))
    counts, sums = stored_sums(line.h)
    assert counts == [N + 5] * ROWS
    np.testing.assert_allclose(sums, expected_sums(N + 5))
    assert not line.h.refused.get("duplicate")
    assert len(segments(line.wal.dir)) <= 2  # checkpoints freed what was delivered and durable


async def test_a_restart_in_the_middle_of_held_delivery_loses_and_doubles_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as line:
        await append_all(line)
        assert line.wal.status()["delivery_held"]
        await line.wal.stop()  # held batches stay in the log
        line.h.gate.set()
        await line.writer.stop()  # the delivered ones are stored and flushed
        durable = line.h.durable_seq
        assert 0 < durable < N
        assert line.h.seqs == list(range(1, durable + 1))

    h = open_store(tmp_path, threading.Event())
    try:
        replayed = replay_into(h, tmp_path / "wal", h.durable_seq)  # what Runtime._replay_wal does at start
        assert replayed == list(range(durable + 1, N + 1))
        counts, sums = stored_sums(h)
        assert counts == [N] * ROWS
        np.testing.assert_allclose(sums, expected_sums(N))
        assert not h.refused.get("duplicate")

        again = replay_into(h, tmp_path / "wal", 0)  # from further back (a position lost): idempotent
        assert again and again[-1] == N
        counts, sums = stored_sums(h)
        assert counts == [N] * ROWS
        np.testing.assert_allclose(sums, expected_sums(N))
        assert h.refused.get("duplicate") == len(again) * ROWS  # replaced by the same values, counted
    finally:
        h.close()


def replay_into(h: DuckDBHistorian, d: Path, after: int) -> list[int]:
    wal = WriteAheadLog(d)
    wal.open()
    seqs = []
    for seq, b in wal.replay(after):
        seqs.append(seq)
        h.write(b, seq)
    h.flush()
    return seqs


async def test_without_a_backlog_the_log_never_holds(tmp_path: Path) -> None:
    """The edge's queue (no bus behind it) starts the log without ``backlog``: every batch goes straight on."""
    wal = WriteAheadLog(tmp_path, WalSettings(commit_ms=1, hold_bytes=HOLD))
    wal.open()
    got: list[pa.RecordBatch] = []
    wal.start(got.append)
    for k in range(200):
        wal.append(batch(k, ROWS))
    await wait_for(lambda: len(got) == 200)
    await wal.stop()
    st = wal.status()
    assert not st["delivery_held"] and st["holds"] == 0 and st["hold_bytes"] is None
