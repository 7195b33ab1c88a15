"""Compaction of closed days: the same answers before and after (checked against numpy on the raw samples),
tables sorted by (tag_id, ts) and one rollup row per (tag, minute) afterwards, nothing to do the second time,
due again after late data, and a failure or a crash in the middle leaves the old table whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from plantlink.historian.base import Retention
from plantlink.historian.duckdb import DuckDBHistorian, blocks, compaction
from plantlink.historian.duckdb.layout import r1m, raw
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, M, S
from tests.historian.pyramid_reference import Samples, answers, assert_same

INTERVALS = (10 * S, 30 * S, 5 * M, 2 * 3600 * S, DAY)
NOW = T0 + 4 * DAY
D0 = T0 // DAY  # the first day's partition number
DAYS = (D0, D0 + 1, D0 + 2)


def make_samples(rng: np.random.Generator) -> dict[int, Samples]:
    """Tag 1 about every 3 s over three days with a 6-hour gap, tag 2 sparse; 10 % bad, 5 % uncertain."""
    out = {}
    for tag, n in ((1, 80_000), (2, 3_000)):
        ts = np.unique(rng.integers(T0, T0 + 3 * DAY, n) // 1000 * 1000)
        ts = ts[(ts < T0 + DAY + 3 * 3600 * S) | (ts >= T0 + DAY + 9 * 3600 * S)]
        value = np.round(50 + np.cumsum(rng.normal(0, 0.2, len(ts))), 2)
        r = rng.random(len(ts))
        quality = np.where(r < 0.1, Quality.BAD, np.where(r < 0.15, Quality.UNCERTAIN, Quality.GOOD))
        out[tag] = (ts, value, quality.astype(np.uint8))
    return out


def write_in_pieces(h: DuckDBHistorian, samples: dict[int, Samples], rng: np.random.Generator,
                    pieces: int = 7) -> None:
    """Every tag in ``pieces`` flushes, mostly in time order, one piece late (rollups recomputed)."""
    for tag, (ts, value, quality) in samples.items():
        parts = np.array_split(np.arange(len(ts)), pieces)
        parts[2], parts[4] = parts[4], parts[2]
        for idx in parts:
            h.write(numeric_batch(np.full(len(idx), tag), ts[idx], value[idx], quality[idx]))
            h.flush()


@pytest.fixture
def samples(hist: DuckDBHistorian) -> dict[int, Samples]:
    rng = np.random.default_rng(15)
    s = make_samples(rng)
    write_in_pieces(hist, s, rng)
    return s


def all_answers(h: DuckDBHistorian) -> dict[int, dict]:  # type: ignore[type-arg]
    return {i: answers(h, [1, 2], T0 - 7 * S, T0 + 3 * DAY + 11 * S, i) for i in INTERVALS}


@pytest.fixture(params=["one group", "a group per tag"])
def chunks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A day is copied in groups of tags (``compaction.CHUNK_ROWS``): one group, and one per tag."""
    if request.param == "a group per tag":
        monkeypatch.setattr(compaction, "CHUNK_ROWS", 1)


def test_tag_groups_split_on_whole_tags(hist: DuckDBHistorian, samples: dict[int, Samples]) -> None:
    cur = hist._cursor()
    n1, n2 = (int((samples[t][0] // DAY == D0).sum()) for t in (1, 2))
    assert compaction.tag_groups(cur, f"raw_d{D0}", n1 + n2) == [(1, 2)]
    assert compaction.tag_groups(cur, f"raw_d{D0}", n1) == [(1, 1), (2, 2)]
    assert compaction.tag_groups(cur, f"raw_d{D0}", 1) == [(1, 1), (2, 2)]


@pytest.mark.usefixtures("chunks")
def test_answers_are_the_same_before_and_after_and_those_of_numpy(hist: DuckDBHistorian,
                                                                  samples: dict[int, Samples]) -> None:
    before = all_answers(hist)
    assert hist.compact(NOW) == 6  # three days, raw and 1-minute tables
    after = all_answers(hist)
    for interval in INTERVALS:
        assert_same(before[interval], samples, T0 - 7 * S, T0 + 3 * DAY + 11 * S, interval)
        assert_same(after[interval], samples, T0 - 7 * S, T0 + 3 * DAY + 11 * S, interval)


@pytest.mark.usefixtures("chunks")
def test_tables_are_sorted_and_minutes_merged(hist: DuckDBHistorian, samples: dict[int, Samples]) -> None:
    hist.sparse_minutes = 10  # tag 1 (about 18 samples a minute) keeps its minutes
    cur = hist._cursor()
    partial = cur.execute(f"SELECT count(*) - count(DISTINCT (tag_id, bucket)) FROM r1m_d{D0}").fetchone()
    assert partial is not None and partial[0] > 0  # flushes cut minutes
    hist.compact(NOW)
    for d in DAYS:
        rows = cur.execute(f"SELECT tag_id, ts FROM {raw(d)}").fetchall()
        assert rows == sorted(rows)
        stored = cur.execute(f"SELECT count(DISTINCT tag_id), sum(n), max(greatest(octet_length(tb), "
                             f"octet_length(vb), octet_length(qb))) FROM rawb_d{d}"
                             ).fetchone()
        assert stored is not None and stored[:2] == (len({t for t, _ in rows}), len(rows))  # blocks hold them all
        assert stored[2] <= blocks.MAX_BLOB
        merged = cur.execute(f"SELECT count(*), count(DISTINCT (tag_id, bucket)) FROM {r1m(d, False)}").fetchone()
        assert merged is not None and merged[0] == merged[1] > 0
        encoded = cur.execute(f"SELECT count(*) FROM r1m_d{d} WHERE bucket IS NULL AND first_ts IS NULL "
                              "AND last_ts IS NULL AND mo IS NOT NULL AND tag_id = 1").fetchone()
        assert encoded is not None and encoded[0] == merged[0]  # the times stored as offsets in the day
        marked = cur.execute(f"SELECT tag_id, n, mo FROM r1m_d{d} WHERE tag_id = 2").fetchall()
        assert marked == [(2, 0, None)]  # tag 2 (about one sample a minute): its minutes read from raw
    n = sum(len(s[0]) for s in samples.values())
    assert sum(cur.execute(f"SELECT sum(n) FROM rawb_d{d}").fetchall()[0][0] for d in DAYS) == n
    assert all(cur.execute(f"SELECT count(*) FROM raw_d{d}").fetchall()[0][0] == 0 for d in DAYS)  # all in blocks


def test_a_second_pass_does_nothing_and_late_data_makes_a_day_due_again(hist: DuckDBHistorian,
                                                                         samples: dict[int, Samples]) -> None:
    assert hist.compact(T0 + DAY) == 0  # no day closed yet
    assert hist.compact(NOW) == 6
    assert hist.compact(NOW) == 0
    ts, value, quality = samples[1]
    late = (np.array([T0 + 5 * S + 123]), np.array([1e3]), np.array([Quality.GOOD], dtype=np.uint8))
    hist.write(numeric_batch([1], *late))
    hist.flush()
    samples[1] = (np.append(ts, late[0]), np.append(value, late[1]), np.append(quality, late[2]))
    due = compaction.due(hist._cursor(), hist._snapshot(), NOW)
    assert ("raw", D0) in due and len(due) <= 2  # that day's raw table (its minutes' row count may not change)
    assert hist.compact(NOW) == len(due)
    assert hist.compact(NOW) == 0
    for interval in INTERVALS:
        assert_same(answers(hist, [1, 2], T0, T0 + 3 * DAY, interval), samples, T0, T0 + 3 * DAY, interval)


def test_a_failure_in_the_swap_leaves_the_old_table(hist: DuckDBHistorian, samples: dict[int, Samples],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    before = all_answers(hist)
    cur = hist._cursor()
    rows = cur.execute(f"SELECT * FROM raw_d{D0}").fetchall()

    def boom(con: object, name: str, rows: int) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(compaction, "_record", boom)  # called after the DROP and RENAME, before the COMMIT
    with pytest.raises(RuntimeError):
        hist.compact(NOW)
    monkeypatch.undo()
    assert cur.execute(f"SELECT * FROM raw_d{D0}").fetchall() == rows
    assert all_answers(hist) == before
    assert hist.compact(NOW) == 6
    assert not cur.execute("SELECT * FROM duckdb_tables() WHERE table_name LIKE '%compacting'").fetchall()


def test_a_flush_into_the_day_during_the_copy_drops_the_copy(hist: DuckDBHistorian, samples: dict[int, Samples],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    late = (np.array([T0 + DAY + 7 * S + 5]), np.array([-1e3]), np.array([Quality.GOOD], dtype=np.uint8))
    real = compaction.prepare
    wrote = []

    def prepare_then_flush(cur: object, kind: str, day: int, with_raw: bool, sparse: int) -> None:
        real(cur, kind, day, with_raw, sparse)  # type: ignore[arg-type]
        if kind == "raw" and day == D0 + 1 and not wrote:  # the flush lands after the copy of that day
            hist.write(numeric_batch([2], *late))
            hist.flush()
            wrote.append(day)

    monkeypatch.setattr(compaction, "prepare", prepare_then_flush)
    assert hist.compact(NOW) == 5  # day 2's raw table kept (its copy missed the late sample)
    monkeypatch.undo()
    ts, value, quality = samples[2]
    samples[2] = (np.append(ts, late[0]), np.append(value, late[1]), np.append(quality, late[2]))
    for interval in INTERVALS:
        assert_same(answers(hist, [1, 2], T0, T0 + 3 * DAY, interval), samples, T0, T0 + 3 * DAY, interval)
    assert hist.compact(NOW) >= 1
    assert hist.compact(NOW) == 0


CRASH = """
import os, sys
from plantlink.historian.duckdb import DuckDBHistorian, compaction
h = DuckDBHistorian(sys.argv[1])
h.open()
def crash(con, name, rows):
    os._exit(3)  # the process dies inside the swap's transaction
compaction._record = crash
h.compact(int(sys.argv[2]))
"""


def test_a_crash_in_the_swap_leaves_the_old_table(store_path: Path, hist: DuckDBHistorian,
                                                  samples: dict[int, Samples]) -> None:
    before = all_answers(hist)
    hist.close()
    done = subprocess.run([sys.executable, "-c", CRASH, str(store_path), str(NOW)], timeout=120)
    assert done.returncode == 3
    h = DuckDBHistorian(store_path)
    h.open()
    try:
        assert all_answers(h) == before
        assert h.compact(NOW) == 6
        for interval in INTERVALS:
            assert_same(answers(h, [1, 2], T0 - 7 * S, T0 + 3 * DAY + 11 * S, interval), samples,
                        T0 - 7 * S, T0 + 3 * DAY + 11 * S, interval)
    finally:
        h.close()


def test_retention_deletes_the_old_minutes_of_a_compacted_day(hist: DuckDBHistorian,
                                                              samples: dict[int, Samples]) -> None:
    hist.sparse_minutes = 0  # every tag's minutes stored: the 1-minute retention deletes them (not a marked tag's)
    assert hist.compact(NOW) == 6
    cutoff = T0 + DAY + 6 * 3600 * S + 30 * S  # inside a minute: that minute is kept
    cur = hist._cursor()
    count = f"SELECT count(*) FROM {r1m(D0 + 1, True)} WHERE bucket + {M} > {cutoff}"
    kept = cur.execute(count).fetchall()[0][0]
    assert 0 < kept < cur.execute(f"SELECT count(*) FROM r1m_d{D0 + 1}").fetchall()[0][0]
    hist.retention = Retention(raw=None, rollup_1m=(NOW - cutoff) / 1e6)
    hist.apply_retention(NOW)
    assert cur.execute(f"SELECT count(*) FROM r1m_d{D0 + 1}").fetchall()[0][0] == kept
    assert cur.execute(count).fetchall()[0][0] == kept


def test_a_group_that_runs_out_of_memory_is_compacted_in_halves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """One statement for the whole day (``CHUNK_ROWS`` raised) cannot sort 8.6 M rows under a 16MB limit: the
    group is split until each part fits, and the day reads back the same, in (tag, time) order."""
    from plantlink.historian.base import TagMeta

    monkeypatch.setattr(compaction, "CHUNK_ROWS", 10**9)
    tags, rng = 100, np.random.default_rng(6)
    path = tmp_path / "h.duckdb"
    with DuckDBHistorian(path, memory_limit="1GB") as h:
        got = h.register_tags([TagMeta(f"m/t{i}", "") for i in range(tags)])
        ids = np.array([got[f"m/t{i}"] for i in range(tags)], dtype=np.uint32)
        for half in (0, 1):  # two flushes, each in time order: the day is not in (tag, time) order
            ts = np.repeat(T0 + half * DAY // 2 + np.arange(43_200, dtype=np.int64) * S, tags)
            h.write(numeric_batch(np.tile(ids, 43_200), ts, np.round(rng.normal(50, 5, len(ts)), 2),
                                  np.full(len(ts), Quality.GOOD, dtype=np.uint8)))
            h.flush()
        before = h.raw_many(ids.tolist(), T0, T0 + DAY, limit=10**8)
    with DuckDBHistorian(path, memory_limit="16MB") as h, caplog.at_level("INFO", "plantlink.historian"):
        assert h.compact(NOW) >= 1
    assert "out of memory, in two halves" in caplog.text
    with DuckDBHistorian(path, memory_limit="1GB") as h:
        after = h.raw_many(ids.tolist(), T0, T0 + DAY, limit=10**8)
        order = h._cursor().execute(f"SELECT tag_id, ts FROM {raw(D0)}").fetchnumpy()
    assert after.num_rows == before.num_rows == tags * 86_400 and after.equals(before)
    assert np.all(np.diff(order["tag_id"].astype(np.int64) * 10**12 + (order["ts"] - T0)) > 0)


def test_a_raw_group_that_runs_out_after_some_inserts_is_not_written_twice(
        hist: DuckDBHistorian, samples: dict[int, Samples], monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw group's blocks go in several INSERTs (``INSERT_BYTES``): when one after the first runs out of
    memory, the group is done again in halves without the blocks its first INSERT wrote."""
    before = {t: hist.raw(t, T0, NOW, limit=10**6) for t in samples}
    monkeypatch.setattr(compaction, "INSERT_BYTES", 1)  # a block per INSERT
    parts = compaction._by_bytes
    calls = []

    def failing(rows):  # type: ignore[no-untyped-def]
        calls.append(rows.num_rows)
        got = parts(rows)
        if len(calls) == 1 and len(got) > 1:
            yield got[0]
            raise duckdb.OutOfMemoryException("Out of Memory Error: (test) the second insert")
        yield from got

    monkeypatch.setattr(compaction, "_by_bytes", failing)
    assert hist.compact(NOW) >= 1
    assert len(calls) >= 3  # the group, then its halves
    for t, b in before.items():
        assert hist.raw(t, T0, NOW, limit=10**6).equals(b)
