"""The DuckDB historian's resource settings (memory limit, threads, buffer bound from options or the
environment) and back-pressure: a full buffer makes the runtime's writer wait for a flush, nothing is dropped."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

import duckdb
import numpy as np
import psutil
import pyarrow as pa
import pytest

from plantlink.bus.inproc import InProcBus
from plantlink.errors import HistorianError
from plantlink.historian import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian, settings
from plantlink.historian.duckdb.buffer import STORE_SCHEMA, WriteBuffer, as_store
from plantlink.historian.duckdb.writer import pieces
from plantlink.historian_writer import HistorianWriter
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import T0, TAGS, M, S

GOOD = int(Quality.GOOD)


def test_settings_default_then_environment_then_options(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with DuckDBHistorian(store_path) as h:
        assert h.settings() == {"threads": settings.DEFAULT_THREADS, "memory_limit": settings.DEFAULT_MEMORY_LIMIT,
                                "flush_rows": settings.DEFAULT_FLUSH_ROWS,
                                "max_buffer_rows": settings.BUFFER_FLUSHES * settings.DEFAULT_FLUSH_ROWS}
        row = h._cursor().execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()
        same = duckdb.connect(config={"memory_limit": settings.DEFAULT_MEMORY_LIMIT})
        assert row[0] == (same.execute("SELECT current_setting('memory_limit')").fetchall()[0][0],
                          settings.DEFAULT_THREADS)
        same.close()
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "48MB")
    monkeypatch.setenv(settings.ENV_THREADS, "1")
    monkeypatch.setenv(settings.ENV_FLUSH_ROWS, "1000")
    with DuckDBHistorian(store_path) as h:
        assert h.settings() == {"threads": 1, "memory_limit": "48MB", "flush_rows": 1000, "max_buffer_rows": 2000}
    with DuckDBHistorian(store_path, threads=2, memory_limit="80MB", flush_rows=10) as h:
        assert h.settings() == {"threads": 2, "memory_limit": "80MB", "flush_rows": 10, "max_buffer_rows": 20}
    monkeypatch.setenv(settings.ENV_THREADS, "two")
    with pytest.raises(HistorianError, match=settings.ENV_THREADS):
        DuckDBHistorian(store_path)
    monkeypatch.delenv(settings.ENV_THREADS)
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "-1MB")  # DuckDB would take it as no limit at all
    with pytest.raises(HistorianError, match=f"{settings.ENV_MEMORY_LIMIT} must be a positive size"):
        DuckDBHistorian(store_path)
    for bad in ("lots", "32", "0MB"):
        with pytest.raises(HistorianError, match=f"memory_limit must be a positive size.*{bad}"):
            DuckDBHistorian(store_path, memory_limit=bad)


def test_a_full_buffer_has_no_room_until_a_flush(store_path: Path) -> None:
    with DuckDBHistorian(store_path, flush_rows=10, background_flush=False) as h:
        h.register_tags(TAGS)
        h.write(numeric_batch([1] * 25, T0 + np.arange(25) * S, np.arange(25.0), GOOD))  # flushed by write
        assert h.has_room() and h.samples_stored == 25
    gate = threading.Event()
    with DuckDBHistorian(store_path, flush_rows=10) as h:
        real = h.flush

        def slow_flush() -> int:
            gate.wait()
            return real()

        h.flush = slow_flush  # type: ignore[method-assign]
        h.write(numeric_batch([1] * 10, T0 + (100 + np.arange(10)) * S, np.arange(10.0), GOOD))  # starts a flush
        h.write(numeric_batch([1] * 9, T0 + (200 + np.arange(9)) * S, np.arange(9.0), GOOD))  # buffers on
        assert h.has_room()
        h.write(numeric_batch([1], [T0 + 300 * S], [1.0], GOOD))
        assert not h.has_room()  # 20 rows wait: a write past this would block until the running flush ends
        waiter = threading.Thread(target=h.wait_for_room)
        waiter.start()
        assert waiter.is_alive()  # still waiting for the running flush (no timing asserted: it cannot end yet)
        gate.set()
        waiter.join()
        assert h.has_room() and h.samples_stored == 20


async def test_the_writer_waits_for_room_and_stores_everything(store_path: Path) -> None:
    bus = InProcBus()
    with DuckDBHistorian(store_path, flush_rows=1000) as h:
        h.register_tags(TAGS)
        writer = HistorianWriter(h, bus.subscribe("historian"), flush_interval=3600)
        writer.start()
        for k in range(200):  # 200 x 500 rows published at once: far more than the buffer's bound
            bus.publish(numeric_batch(np.tile([1, 2], 250), T0 + (k * 250 + np.repeat(np.arange(250), 2)) * S,
                                      np.full(500, float(k)), GOOD))
        await writer.stop()
        assert writer.waits > 0 and writer.errors == 0
        assert h.samples_stored == 100_000
        assert h.aggregate([1, 2], T0, T0 + 10**6 * S, 10**6 * S, ["count"]).column("count").to_pylist() == [
            50_000, 50_000]
        assert await asyncio.to_thread(h.flush) == 0


ROUND_TAGS, ROUND_STEPS = 500, 200  # 100,000 rows a flush, about 2.5 MiB in Arrow
LIMIT_MB = 32


def _duckdb_bytes(h: DuckDBHistorian) -> int:
    row = h._cursor().execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_sustained_ingest_does_not_grow_memory(store_path: Path) -> None:
    """36 flushes of 100,000 rows: after each, DuckDB holds no more than its limit and Arrow no more than the
    latest values; the process's resident memory after the last 12 flushes is at most 24 MiB above its
    highest after the 12 before (kept flushed chunks, 2.5 MiB or more each, would add 30 MiB or more)."""
    proc = psutil.Process()
    ids = np.arange(1, ROUND_TAGS + 1, dtype=np.uint32)
    peaks: list[float] = []
    with DuckDBHistorian(store_path, memory_limit=f"{LIMIT_MB}MB", background_flush=False) as h:
        h.register_tags([TagMeta(f"m/t{i}") for i in ids.tolist()])
        arrow_before = pa.total_allocated_bytes()
        for k in range(36):
            ts = T0 + (k * ROUND_STEPS + np.repeat(np.arange(ROUND_STEPS), ROUND_TAGS)) * 10 * S
            h.write(numeric_batch(np.tile(ids, ROUND_STEPS), ts, np.full(len(ts), float(k)), GOOD))
            assert h.flush() == ROUND_TAGS * ROUND_STEPS
            assert _duckdb_bytes(h) <= LIMIT_MB * 10**6
            assert pa.total_allocated_bytes() - arrow_before < 2**20  # no chunk kept past its flush
            peaks.append(proc.memory_info().rss / 2**20)
        assert h.samples_stored == 36 * ROUND_TAGS * ROUND_STEPS
    assert max(peaks[24:]) - max(peaks[12:24]) < 24, peaks


def test_a_million_raw_samples_in_time_order_within_the_memory_limit(store_path: Path) -> None:
    """``raw`` with a limit of a million over 12 days written out of order, under the default limit: the first
    ``limit`` samples by time, as numpy says (DuckDB's sort of the flushes' recompute over the 12 days ran out of
    32MB before it was read a day at a time and sorted by numpy)."""
    rng = np.random.default_rng(7)
    n = 1_200_000
    ts = T0 + np.arange(n, dtype=np.int64) * 900_000  # 0.9 s apart: about 12.5 days
    with DuckDBHistorian(store_path, background_flush=False) as h:
        tag = h.register_tags([TagMeta("m/raw")])["m/raw"]
        for part in np.array_split(rng.permutation(n), 6):  # six flushes, each in a random order
            h.write(numeric_batch(np.full(len(part), tag, np.uint32), ts[part], part.astype(np.float64), GOOD))
            h.flush()
        t = h.raw(tag, int(ts[0]), int(ts[-1]) + 1, limit=1_000_000)
    got = t.column("ts").cast(pa.int64()).to_numpy()
    assert t.num_rows == 1_000_000
    assert np.array_equal(got, ts[:1_000_000])
    assert np.array_equal(t.column("value").to_numpy(), np.arange(1_000_000, dtype=np.float64))


def test_an_out_of_order_flush_over_12_days_fits_32mb_and_reads_back(store_path: Path) -> None:
    """One flush of 200,000 samples of two tags in random order over 12 days, late against 600,000 stored over
    the same days (a tenth of the flush writing a stored (tag, time) again: the last written wins), under a 32MB
    limit (DuckDB's sort of the 12 days' 800,000 rows for the recompute ran out of it): raw rows and hourly
    aggregates as numpy computes them from what was written."""
    rng = np.random.default_rng(11)
    span = 12 * 86_400 * S
    old_ts = T0 + np.sort(rng.choice(span // S, 600_000, replace=False)) * S
    old_tag = rng.integers(1, 3, len(old_ts)).astype(np.uint32)
    again = rng.choice(len(old_ts), 20_000, replace=False)
    fresh = T0 + rng.choice(span // S, 180_000, replace=False) * S + S // 2  # between the stored seconds
    new_ts = np.concatenate([old_ts[again], fresh])
    new_tag = np.concatenate([old_tag[again], rng.integers(1, 3, len(fresh)).astype(np.uint32)])
    shuffle = rng.permutation(len(new_ts))
    new_tag, new_ts = new_tag[shuffle], new_ts[shuffle]
    with DuckDBHistorian(store_path, memory_limit=f"{LIMIT_MB}MB", background_flush=False) as h:
        h.register_tags(TAGS)
        h.write(numeric_batch(old_tag, old_ts, np.arange(len(old_ts), dtype=np.float64), GOOD))
        h.flush()
        assert h.flush() == 0
        h.write(numeric_batch(new_tag, new_ts, -np.arange(len(new_ts), dtype=np.float64) - 1, GOOD))
        assert h.flush() == len(new_ts)
        got = {t: h.raw(t, T0, T0 + span + S, limit=10**6) for t in (1, 2)}
        aggs = h.aggregate([1, 2], T0, T0 + span + S, 3600 * S, ["count", "min", "max", "mean", "first", "last"])
    tag = np.concatenate([old_tag, new_tag])
    ts = np.concatenate([old_ts, new_ts])
    value = np.concatenate([np.arange(len(old_ts), dtype=np.float64), -np.arange(len(new_ts), dtype=np.float64) - 1])
    order = np.lexsort((np.arange(len(ts)), ts, tag))  # by (tag, time), the last written of one (tag, time) last
    tag, ts, value = tag[order], ts[order], value[order]
    last = np.append((tag[1:] != tag[:-1]) | (ts[1:] != ts[:-1]), True)
    tag, ts, value = tag[last], ts[last], value[last]
    for t in (1, 2):
        assert np.array_equal(got[t].column("ts").cast(pa.int64()).to_numpy(), ts[tag == t])
        assert np.array_equal(got[t].column("value").to_numpy(), value[tag == t])
    hour = (ts - T0) // (3600 * S) * 3600 * S + T0
    key = tag.astype(np.int64) * 2**40 + (hour - T0) // S
    keys, starts, counts = np.unique(key, return_index=True, return_counts=True)
    got_aggs = aggs.sort_by([("tag_id", "ascending"), ("bucket", "ascending")])
    col = {c: got_aggs.column(c).to_numpy() for c in ("tag_id", "count", "min", "max", "mean", "first", "last")}
    assert len(keys) == got_aggs.num_rows
    assert np.array_equal(col["tag_id"], tag[starts])
    assert np.array_equal(got_aggs.column("bucket").cast(pa.int64()).to_numpy(), hour[starts])
    assert np.array_equal(col["count"], counts)
    assert np.array_equal(col["min"], np.minimum.reduceat(value, starts))
    assert np.array_equal(col["max"], np.maximum.reduceat(value, starts))
    assert np.allclose(col["mean"], np.add.reduceat(value, starts) / counts, rtol=1e-12)
    assert np.array_equal(col["first"], value[starts])
    assert np.array_equal(col["last"], value[starts + counts - 1])


def test_pieces_cut_where_a_tag_minute_ends() -> None:
    """``writer.pieces``: consecutive slices covering the chunk, each of at least ``rows`` rows (but the last),
    none splitting a (tag, minute); a (tag, minute) longer than ``rows`` stays whole."""
    tag = np.repeat(np.array([1, 2, 3], np.uint32), [250, 7, 300])
    ts = np.concatenate([T0 + np.arange(250) * 10 * S, T0 + np.arange(7) * S, T0 + np.arange(300) * S // 10])
    batch = numeric_batch(tag, ts, np.arange(len(tag), dtype=np.float64), GOOD)
    buf = WriteBuffer(STORE_SCHEMA)
    buf.add(as_store(batch, STORE_SCHEMA))
    chunk = buf.sort(buf.take())
    got = list(pieces(chunk, rows=100))
    assert np.array_equal(np.concatenate([p.ts for p in got]), chunk.ts)
    # tag 1: 250 rows, 6 a minute (cuts after 102 and 204 rows); tags 2 and 3 one minute each: the last piece
    assert [len(p) for p in got] == [102, 102, 353]
    for a, b in itertools.pairwise(got):
        assert (a.tag[-1], a.ts[-1] // M) != (b.tag[0], b.ts[0] // M)
        assert a.table.num_rows == len(a) and a.value.shape == a.ts.shape
