"""Giving freed blocks back: after compaction the file shrinks (without ``reclaim`` it grows), every read gives
the same answer bit for bit before and after the tables moved and after a reopen, a moved table keeps its rows
in order and its constraints, and a copy a crash left behind is dropped at open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from plantlink.historian.base import TagMeta
from plantlink.historian.duckdb import DuckDBHistorian, reclaim
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, S

TAGS = 40
PERIOD = 10 * S
DAYS = 3
NOW = T0 + (DAYS + 1) * DAY


def fill(path: Path, flushes: int = 90) -> list[int]:
    """``TAGS`` tags every 10 s for ``DAYS`` days (random walks at 2 decimals, 1 % bad), in ``flushes`` flushes
    of a slice of time each: a day table is many short runs of each tag, as in a running store."""
    rng = np.random.default_rng(3)
    steps = DAYS * DAY // PERIOD
    level = rng.uniform(10, 100, TAGS)
    walk = np.round(level + np.cumsum(rng.normal(0, 0.05, (steps, TAGS)), axis=0), 2)
    with DuckDBHistorian(path, background_flush=False) as h:
        ids = list(h.register_tags([TagMeta(f"m/t{i}", "", "float") for i in range(TAGS)]).values())
        for part in np.array_split(np.arange(steps), flushes):
            ts = np.repeat(T0 + part * PERIOD, TAGS)
            tag = np.tile(np.asarray(ids), len(part))
            quality = np.where(rng.random(len(ts)) < 0.01, Quality.BAD, Quality.GOOD).astype(np.uint8)
            h.write(numeric_batch(tag, ts, walk[part].reshape(-1), quality))
            h.flush()
    return ids


def reads(h: DuckDBHistorian, ids: list[int]) -> dict[str, Any]:
    """Every read a client can make of the store, as Arrow tables."""
    end = T0 + DAYS * DAY
    return {
        "raw": h.raw_many(ids, T0, end, limit=10**8),
        "one": h.raw(ids[3], T0, end, limit=10**8),
        "before": h.last_before(ids[5], T0 + DAY + 7 * S),
        "latest": h.latest(ids),
        "tags": h.tags(),
        **{f"agg{i}": h.aggregate(ids, T0, end, i) for i in (60 * S, 3600 * S, DAY, 7 * S)},
        "down": h.downsample(ids[0], T0, end, 300),
    }


def assert_identical(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].schema == b[k].schema, k
        assert a[k].num_rows == b[k].num_rows and a[k].num_rows > 0, k
        for name in a[k].column_names:
            x, y = a[k].column(name).combine_chunks(), b[k].column(name).combine_chunks()
            assert x.type == y.type and x.is_null().equals(y.is_null()), (k, name)
            if pa.types.is_floating(x.type):  # bit for bit (NaN included)
                assert np.array_equal(_bits(x), _bits(y)), (k, name)
            else:
                assert x.equals(y), (k, name)


def _bits(x: pa.Array) -> np.ndarray:
    return np.asarray(x.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64).view(np.uint64)


def file_bytes(path: Path) -> int:
    return path.stat().st_size


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, list[int], int]:
    path = tmp_path / "h.duckdb"
    ids = fill(path)
    return path, ids, file_bytes(path)


def test_without_reclaim_compaction_leaves_the_file_as_big(filled: tuple[Path, list[int], int],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ids, appended = filled
    monkeypatch.setattr(reclaim, "FREE_FRACTION", 1.0)  # never worth it
    with DuckDBHistorian(path, background_flush=False) as h:
        h.build_rollups(NOW)
        total, free = reclaim.blocks(h._require_open())
    assert free > 0.3 * total  # compaction freed blocks ...
    assert file_bytes(path) >= appended  # ... and the file kept them


def test_compaction_gives_the_space_back_and_reads_stay_identical(filled: tuple[Path, list[int], int],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path, ids, appended = filled
    with DuckDBHistorian(path, background_flush=False) as h:
        monkeypatch.setattr(reclaim, "FREE_FRACTION", 1.0)
        h.build_rollups(NOW)
        compacted = file_bytes(path)
        total, free = reclaim.blocks(h._require_open())
        in_use = (total - free) * compacted // total
        before = reads(h, ids)
        monkeypatch.undo()
        moved = reclaim.run(h._require_open, h._write_lock)
        assert moved > 0
        shrunk = file_bytes(path)
        total, free = reclaim.blocks(h._require_open())
        assert_identical(before, reads(h, ids))
    assert shrunk < appended < compacted
    assert free <= reclaim.DONE_FRACTION * total
    assert shrunk <= in_use / (1 - reclaim.DONE_FRACTION)  # the file is (about) the blocks in use
    with DuckDBHistorian(path, background_flush=False) as h:
        assert_identical(before, reads(h, ids))
        assert h.compact(NOW) == 0  # the moved day tables are still known as compacted
        assert reclaim.run(h._require_open, h._write_lock) == 0  # nothing left worth moving
    assert file_bytes(path) <= shrunk


def test_the_maintenance_pass_reclaims(filled: tuple[Path, list[int], int]) -> None:
    path, _ids, appended = filled
    with DuckDBHistorian(path, background_flush=False) as h:
        h.build_rollups(NOW)
        total, free = reclaim.blocks(h._require_open())
    assert file_bytes(path) < appended
    assert free <= reclaim.DONE_FRACTION * total


def test_a_moved_table_keeps_its_rows_in_order_and_its_constraints(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reclaim, "CHUNK_ROWS", 7)  # several statements
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, name VARCHAR UNIQUE, v DOUBLE NOT NULL)")
    keys = np.random.default_rng(1).permutation(100)
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(int(k), f"n{k}", k / 3) for k in keys])
    con.execute("DELETE FROM t WHERE k % 10 = 0")  # gaps in the row ids
    rows = con.execute("SELECT * FROM t").fetchall()
    reclaim.move(con, "t")
    assert con.execute("SELECT * FROM t").fetchall() == rows
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("t",)]
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO t VALUES (1, 'other', 0)")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO t VALUES (1000, 'n1', 0)")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO t VALUES (1001, 'x', NULL)")
    con.close()


def test_a_copy_left_by_a_crash_is_dropped_at_open(store_path: Path) -> None:
    with DuckDBHistorian(store_path, background_flush=False):
        pass
    con = duckdb.connect(str(store_path))
    con.execute("CREATE TABLE tags_moving AS SELECT * FROM tags")
    con.close()
    with DuckDBHistorian(store_path, background_flush=False) as h:
        names = {n for (n,) in h._require_open().execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "tags_moving" not in names and "tags" in names


def test_an_open_day_moves_only_while_small(hist: DuckDBHistorian, monkeypatch: pytest.MonkeyPatch) -> None:
    hist.write(numeric_batch(np.array([1, 1]), np.array([T0, T0 + S]), np.array([1.0, 2.0]),
                             np.array([Quality.GOOD] * 2, dtype=np.uint8)))
    hist.flush()
    con = hist._require_open()
    assert reclaim.movable(con, f"raw_d{T0 // DAY}")
    monkeypatch.setattr(reclaim, "OPEN_ROWS", 1)
    assert not reclaim.movable(con, f"raw_d{T0 // DAY}")
    assert reclaim.movable(con, "tags")
    hist.compact(T0 + 2 * DAY)  # compacted in its present state: movable whatever its size
    assert reclaim.movable(con, f"raw_d{T0 // DAY}")


def test_a_large_open_day_holding_the_tail_keeps_the_file_until_it_is_compacted(
        filled: tuple[Path, list[int], int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The last day (written last: at the end of the file) is still open at the first pass and larger than
    ``OPEN_ROWS``: the pass compacts and moves the closed days below it, then stops at it (the file stays as
    long as written); the pass after that day's compaction gives the space back."""
    path, _ids, appended = filled
    monkeypatch.setattr(reclaim, "OPEN_ROWS", 1_000)  # the open day holds 40 tags x 8,640 = 345,600 rows
    open_day = f"raw_d{(T0 + (DAYS - 1) * DAY) // DAY}"
    with DuckDBHistorian(path, background_flush=False) as h:
        h.build_rollups(NOW - 2 * DAY + 3600 * S)  # the last day open
        con = h._require_open()
        total, free = reclaim.blocks(con)
        assert reclaim.tail(con)[0] == open_day and not reclaim.movable(con, open_day)
    assert free > 0.3 * total  # the closed days' old blocks are free below the open day ...
    assert file_bytes(path) >= appended  # ... and stay in the file
    with DuckDBHistorian(path, background_flush=False) as h:
        h.build_rollups(NOW)  # the day closed and compacted: it moves too
        total, free = reclaim.blocks(h._require_open())
    assert free <= reclaim.FREE_FRACTION * total  # (below it, the next pass would not move)
    assert file_bytes(path) < 0.7 * appended
