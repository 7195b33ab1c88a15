"""What only the DuckDB historian promises: automatic flushes by row count, per-minute rollup rows, one writer
with concurrent readers from threads, a close that never deadlocks. Everything a backend must do is the contract
suite (``test_duckdb_contract.py``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from plantlink.historian import Retention, TagMeta, open_historian
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, M, S

GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)


def test_writes_flush_themselves_every_flush_rows(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, flush_rows=3)
    (a,) = h.register_tags([TagMeta("a")]).values()
    h.write(numeric_batch([a, a, a], [T0 + 2 * S, T0, T0 + S], [2.0, 7.0, 1.0], GOOD))  # a flush in the background
    deadline = time.monotonic() + 15
    while h.samples_stored < 3:
        assert time.monotonic() < deadline, "no automatic flush at flush_rows"
        time.sleep(0.01)
    h.write(numeric_batch([a], [T0 + 5 * S], [9.0], BAD))  # buffered only; the latest value all the same
    assert h.samples_stored == 3 and h.latest([a]).column("value").to_pylist() == [9.0]
    h.close()
    h2 = open_historian("duckdb", path=store_path)
    assert h2.raw(a, T0, T0 + DAY).column("value").to_pylist() == [7.0, 1.0, 2.0, 9.0]
    h2.close()


def test_rollup_retention(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, retention=Retention(raw=None, rollup_1m=86400.0))
    (tag,) = h.register_tags([TagMeta("r")]).values()
    h.write(numeric_batch([tag, tag], [T0 + S, T0 + 2 * DAY], [1.0, 2.0], GOOD))
    h.flush()
    assert h.apply_retention(T0 + 2 * DAY + S) == 1  # the rollup row of the first day
    assert h.raw(tag, T0, T0 + 3 * DAY).num_rows == 2
    h.close()


def test_writer_thread_with_concurrent_readers(store_path: Path) -> None:
    h = open_historian("duckdb", path=store_path, flush_rows=500)
    ids = list(h.register_tags([TagMeta(f"t{i}") for i in range(20)]).values())
    errors: list[BaseException] = []
    steps = 300

    def writer() -> None:
        try:
            for k in range(steps):
                h.write(numeric_batch(ids, T0 + k * S, np.full(20, float(k)), GOOD))
                if k % 50 == 0:
                    threading.Thread(target=h.flush).start()  # flushes from other threads too
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while w.is_alive():
                latest = h.latest(ids).column("value").to_numpy(zero_copy_only=False)
                assert np.all(np.isnan(latest)) or np.ptp(latest[~np.isnan(latest)]) <= 1
                h.aggregate(ids[:5], T0, T0 + steps * S, M)
                h.raw(ids[0], T0, T0 + steps * S)
        except BaseException as exc:
            errors.append(exc)

    w = threading.Thread(target=writer)
    readers = [threading.Thread(target=reader) for _ in range(2)]
    w.start()
    for r in readers:
        r.start()
    w.join()
    for r in readers:
        r.join()
    h.flush()
    assert not errors, errors
    assert h.raw(ids[7], T0, T0 + DAY).num_rows == steps
    assert h.aggregate([ids[3]], T0, T0 + DAY, DAY, ["count", "max"]).to_pylist()[0]["count"] == steps
    h.close()


def test_close_while_a_background_flush_waits_does_not_deadlock(store_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """close() used to hold the write lock while waiting for a background flush that needs that lock."""
    real_flush = DuckDBHistorian.flush

    def slow_start(self: DuckDBHistorian) -> int:
        if threading.current_thread().name.startswith("historian-flush"):
            threading.Event().wait(0.3)  # the worker starts after close() has begun
        return real_flush(self)

    monkeypatch.setattr(DuckDBHistorian, "flush", slow_start)
    h = open_historian("duckdb", path=store_path, flush_rows=10)
    (tag,) = h.register_tags([TagMeta("t")]).values()
    h.write(numeric_batch([tag] * 25, [T0 + i * S for i in range(25)], [float(i) for i in range(25)], GOOD))
    closer = threading.Thread(target=h.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "close() deadlocked"
    h = open_historian("duckdb", path=store_path)
    try:
        assert h.raw(tag, T0, T0 + 25 * S).num_rows == 25  # every sample written before close is stored
    finally:
        h.close()
