"""Persisted latest values: an open reads them (no scan), they are the last ARRIVED samples, they survive a crash
between flushes once the write-ahead log's batches are replayed, and a store from before they were kept gets
them from one scan."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa

from plantlink.historian import Retention
from plantlink.historian.duckdb import DuckDBHistorian
from plantlink.samples import Quality, numeric_batch, text_batch
from tests.historian.conftest import DAY, T0, TAGS, M, S

GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)


def batches() -> list[pa.RecordBatch]:
    """Numbers, text and a bad sample; then tag 1 gets an OLDER sample that arrives last."""
    return [
        numeric_batch([1, 2, 1], [T0 + 2 * S, T0, T0 + 3 * S], [2.0, 7.0, 3.0], [GOOD, GOOD, GOOD]),
        text_batch([3, 3], [T0 + S, T0 + 2 * S], ["RUN", "STOP"], GOOD),
        numeric_batch([2], [T0 + 4 * S], [8.5], BAD),
        numeric_batch([1], [T0 - M], [-1.0], GOOD),
    ]


def snapshot(h: DuckDBHistorian) -> list[dict[str, object]]:
    return h.latest([1, 2, 3]).to_pylist()


def test_reopen_reads_the_persisted_latest_without_a_scan(store_path: Path) -> None:
    with DuckDBHistorian(store_path) as h:
        h.register_tags(TAGS)
        for i, b in enumerate(batches()):
            h.write(b)
            if i == 1:
                h.flush()
        before = snapshot(h)
    assert (before[0]["value"], before[1]["quality"], before[2]["text"]) == (-1.0, BAD, "STOP")
    con = duckdb.connect(str(store_path))  # the store says the same, before any open rebuilds anything
    assert con.sql("SELECT tag_id, value, text FROM latest ORDER BY tag_id").fetchall() == [
        (1, -1.0, None), (2, 8.5, None), (3, None, "STOP")]
    con.close()
    with DuckDBHistorian(store_path) as h2:
        assert snapshot(h2) == before
        h2.write(numeric_batch([2], [T0 - DAY], [1.0], GOOD))  # out of order after a reopen: still latest
        assert h2.latest([2]).column("value").to_pylist() == [1.0]
        h2.flush()
        assert h2.raw(2, T0 - DAY, T0 + DAY).column("value").to_pylist() == [1.0, 7.0, 8.5]


CRASH = textwrap.dedent("""
    import os, sys
    from plantlink.historian.duckdb import DuckDBHistorian
    from tests.historian.conftest import TAGS
    from tests.historian.test_duckdb_persisted_latest import batches
    h = DuckDBHistorian(sys.argv[1]); h.open(); h.register_tags(TAGS)
    for seq, b in enumerate(batches(), 1):
        h.write(b, seq)
        if seq == 2:
            h.flush()
    os._exit(0)  # a crash: batches 3 and 4 were never flushed
""")


def test_a_crash_between_flushes_then_the_log_replay_gives_the_last_arrived(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", CRASH, str(store_path)], check=True, cwd=Path(__file__).parents[2])
    with DuckDBHistorian(store_path) as h:
        assert h.durable_seq == 2
        after_crash = snapshot(h)
        assert (after_crash[0]["value"], after_crash[1]["value"]) == (3.0, 7.0)  # as of the last flush
        for seq, b in enumerate(batches(), 1):  # what the runtime's replay does: the batches after durable_seq
            if seq > h.durable_seq:
                h.write(b, seq)
        replayed = snapshot(h)
    assert (replayed[0]["value"], replayed[0]["ts"].timestamp() * 1e6) == (-1.0, T0 - M)
    assert (replayed[1]["value"], replayed[1]["quality"], replayed[2]["text"]) == (8.5, BAD, "STOP")
    with DuckDBHistorian(store_path) as h2:
        assert snapshot(h2) == replayed


def test_a_store_from_before_persisted_latest_is_scanned_once(store_path: Path) -> None:
    with DuckDBHistorian(store_path) as h:
        h.register_tags(TAGS)
        h.write(numeric_batch([1, 1, 2], [T0 + S, T0, T0], [1.0, 0.5, 2.0], GOOD))
    con = duckdb.connect(str(store_path))
    con.execute("DROP TABLE latest")
    con.execute("DROP TABLE stored_max")
    con.close()
    with DuckDBHistorian(store_path) as h2:  # no arrival order kept: the greatest timestamp is the latest
        assert h2.latest([1, 2]).column("value").to_pylist() == [1.0, 2.0]
        h2.write(numeric_batch([1], [T0 + S], [5.0], GOOD))  # the newest stored time is known: a rewrite
        h2.flush()
        assert h2.raw(1, T0, T0 + M).column("value").to_pylist() == [0.5, 5.0]
    con = duckdb.connect(str(store_path))
    assert con.sql("SELECT tag_id, value FROM latest ORDER BY tag_id").fetchall() == [(1, 5.0), (2, 2.0)]
    assert con.sql("SELECT tag_id, ts FROM stored_max ORDER BY tag_id").fetchall() == [(1, T0 + S), (2, T0)]
    con.close()


def test_retention_forgets_old_latest_values_in_the_store_too(store_path: Path) -> None:
    with DuckDBHistorian(store_path, Retention(raw=DAY / S)) as h:
        h.register_tags(TAGS)
        h.write(numeric_batch([1, 2], [T0, T0 + 3 * DAY], [1.0, 2.0], GOOD))
        h.flush()
        h.apply_retention(T0 + 3 * DAY)
    with DuckDBHistorian(store_path) as h2:
        assert h2.latest([1, 2]).column("value").to_pylist() == [None, 2.0]
