"""The blocks of compacted days (``blocks``): every raw value read back bit for bit after compaction, for tags
stored as scaled integers and tags kept as floats, with NaN and infinity (flagged bad), -0.0, negative and large
values; late samples, a second compaction and retention keep them so; a day compacted before the blocks (times
as ``te``, values as ``iv``/``sc``) still reads and is compacted into blocks."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from plantlink.historian.base import Retention, TagMeta
from plantlink.historian.duckdb import DuckDBHistorian, blocks
from plantlink.samples import Quality, numeric_batch
from tests.historian.conftest import DAY, T0, S

NOW = T0 + 3 * DAY
D0 = T0 // DAY
N = 3000


def _series(rng: np.random.Generator) -> dict[str, np.ndarray]:
    walk = np.cumsum(rng.normal(0, 0.3, N))
    odd = np.round(walk, 3)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e300, 5e-324, 2.0**53 + 2, -1e-7])
    odd[5:5 + len(specials)] = specials
    return {
        "cents": np.round(50 + walk, 2),  # scale 2
        "negative": np.round(-1e6 + walk * 1000, 1),  # scale 1, negative, large
        "huge": np.round(walk * 1e12),  # scale 0, beyond 2**32
        "micro": np.round(walk / 1000, 6),  # scale 6
        "float": 20 + walk * np.pi,  # no decimal scale: kept as DOUBLE
        "mixed": odd,  # scale 3 with NaN, infinities, -0.0 and values of no scale kept as DOUBLE
    }


def _fill(h: DuckDBHistorian) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    series = _series(rng)
    ids = h.register_tags([TagMeta(f"enc/{name}", "") for name in series])
    out = {}
    for name, value in series.items():
        tid = ids[f"enc/{name}"]
        ts = T0 + np.sort(rng.choice(2 * DAY // S, N, replace=False)) * S
        quality = np.where(rng.random(N) < 0.05, Quality.BAD, Quality.GOOD).astype(np.uint8)
        for part in np.array_split(np.arange(N), 4):  # several flushes: the days are many chunks
            h.write(numeric_batch(np.full(len(part), tid), ts[part], value[part], quality[part]))
            h.flush()
        out[tid] = (ts, value)
    return out


def _raw(h: DuckDBHistorian, tid: int) -> pa.Table:
    return h.raw(tid, T0, T0 + 2 * DAY)


def _bits(a: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(a.to_numpy(), dtype=np.float64).view(np.int64)


def _assert_identical(before: pa.Table, after: pa.Table) -> None:
    assert before.column("ts").equals(after.column("ts"))
    assert before.column("quality").equals(after.column("quality"))
    assert np.array_equal(_bits(before.column("value")), _bits(after.column("value")))


def _encoded(h: DuckDBHistorian, tid: int) -> tuple[int, int, set[int]]:
    """(samples in decimal blocks, samples in float blocks, scales) of one tag in the first day's table."""
    rows = h._cursor().execute(f"SELECT vm, n FROM rawb_d{D0} WHERE tag_id = {tid}").fetchall()
    assert h._cursor().execute(f"SELECT count(*) FROM raw_d{D0}").fetchall() == [(0,)]
    decimal = [(vm % blocks.FRAME, n) for vm, n in rows if vm != blocks.FLOAT]
    return sum(n for _, n in decimal), sum(n for vm, n in rows if vm == blocks.FLOAT), {d for d, _ in decimal}


def test_values_read_back_bit_for_bit_after_compaction(hist: DuckDBHistorian) -> None:
    written = _fill(hist)
    before = {tid: _raw(hist, tid) for tid in written}
    many = hist.raw_many(sorted(written), T0, T0 + 2 * DAY)
    assert hist.compact(NOW) == 4
    for tid, (_ts, value) in written.items():
        after = _raw(hist, tid)
        _assert_identical(before[tid], after)
        # what was written, NaN and infinities included (flagged bad), bit for bit
        stored = np.asarray(after.column("value").to_numpy(), dtype=np.float64)
        assert np.array_equal(stored.view(np.int64), value.view(np.int64))
    after_many = hist.raw_many(sorted(written), T0, T0 + 2 * DAY)
    assert after_many.column("tag_id").equals(many.column("tag_id"))
    _assert_identical(many, after_many)


def test_exact_decimals_are_stored_as_integers_and_the_rest_as_floats(hist: DuckDBHistorian) -> None:
    written = _fill(hist)
    hist.compact(NOW)
    ids = {name: i for i, name in zip(sorted(written), ("cents", "negative", "huge", "micro", "float", "mixed"),
                                      strict=True)}
    for name, scale in (("cents", 2), ("negative", 1), ("huge", 0), ("micro", 6)):
        as_int, as_float, scales = _encoded(hist, ids[name])
        assert as_float == 0 and as_int > 0 and scales == {scale}, name
    as_int, as_float, scales = _encoded(hist, ids["float"])
    assert as_int == 0 and as_float > 0
    as_int, as_float, scales = _encoded(hist, ids["mixed"])  # the block holding the specials is of floats
    first = hist._cursor().execute(f"SELECT min(n) FILTER (WHERE t0 = (SELECT min(t0) FROM rawb_d{D0} "
                                   f"WHERE tag_id = {ids['mixed']})) FROM rawb_d{D0} WHERE tag_id = {ids['mixed']}"
                                   ).fetchone()
    assert scales == {3} and first is not None and as_float == first[0] and as_int > 0


def test_aggregates_latest_and_sql_are_the_same_after_compaction(hist: DuckDBHistorian) -> None:
    written = _fill(hist)
    tids = sorted(written)
    queries = [(tids, T0, T0 + 2 * DAY, i) for i in (10 * S, 60 * S, 3600 * S, DAY)]
    before = [hist.aggregate(*q, ["min", "max", "mean", "twa", "first", "last", "count"]) for q in queries]
    sql = "SELECT tag, ts_us, value, quality FROM samples ORDER BY tag, ts_us"
    sql_before = hist.sql(sql, limit=100_000, timeout_s=30).table
    hist.compact(NOW)
    after = [hist.aggregate(*q, ["min", "max", "mean", "twa", "first", "last", "count"]) for q in queries]
    for b, a in zip(before, after, strict=True):
        assert b.schema == a.schema
        for col in b.column_names:  # an empty bucket's mean is NaN before and after
            x, y = (t.column(col).to_numpy(zero_copy_only=False) for t in (b, a))
            if col in ("mean", "twa"):  # sums of a compacted day's rows in another order: the last bits
                np.testing.assert_allclose(y, x, rtol=1e-12, err_msg=col)
            else:
                assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), col
    sql_after = hist.sql(sql, limit=100_000, timeout_s=30).table
    assert sql_after.column("tag").equals(sql_before.column("tag"))
    _assert_identical(sql_before.rename_columns(["tag", "ts", "value", "quality"]),
                      sql_after.rename_columns(["tag", "ts", "value", "quality"]))
    latest = hist.latest(tids)
    hist.close()
    hist.open()  # the latest values are rebuilt from the compacted tables
    assert hist.latest(tids).equals(latest)


def test_late_samples_recompaction_and_retention_keep_the_values(hist: DuckDBHistorian) -> None:
    written = _fill(hist)
    hist.compact(NOW)
    tid = sorted(written)[0]
    late_ts, late_v = T0 + 7 * S + 3, 12.345678901  # no decimal scale up to 6: stays a float
    hist.write(numeric_batch([tid, tid], [late_ts, T0 + 9 * S + 1], [late_v, 0.25], [Quality.GOOD] * 2))
    hist.flush()
    with_late = _raw(hist, tid)
    assert late_v in with_late.column("value").to_pylist()
    assert hist.compact(NOW) >= 1  # that day is due again and re-encoded
    _assert_identical(with_late, _raw(hist, tid))
    noon = T0 + 12 * 3600 * S
    hist.retention = Retention(raw=(NOW - noon) / 1e6)  # keep from noon of the first day on
    hist.apply_retention(NOW)
    got = _raw(hist, tid)  # whole blocks go, once their last sample is older than the cutoff
    cur = hist._cursor()
    assert cur.execute(f"SELECT count(*) FROM rawb_d{D0} WHERE t1 < {noon}").fetchall() == [(0,)]
    first = cur.execute(f"SELECT min(t0) FROM rawb_d{D0} WHERE tag_id = {tid}").fetchone()
    assert first is not None
    kept = with_late.filter(pa.compute.greater_equal(with_late.column("ts").cast(pa.int64()), first[0]))
    _assert_identical(kept, got)  # the samples from the first kept block's on, none lost after noon
    assert got.num_rows < with_late.num_rows


def test_a_store_of_before_the_encoding_opens_and_compacts(hist: DuckDBHistorian, store_path: Path) -> None:
    written = _fill(hist)
    before = {tid: _raw(hist, tid) for tid in written}
    hist.close()
    con = duckdb.connect(str(store_path))  # the raw tables as an older version wrote them: four columns
    for d in (D0, D0 + 1):
        con.execute(f"CREATE TABLE old AS SELECT tag_id, ts, value, quality FROM raw_d{d}")
        con.execute(f"DROP TABLE raw_d{d}")
        con.execute(f"ALTER TABLE old RENAME TO raw_d{d}")
    con.close()
    hist.open()
    for tid in written:
        _assert_identical(before[tid], _raw(hist, tid))
    assert hist.compact(NOW) == 4
    for tid in written:
        _assert_identical(before[tid], _raw(hist, tid))


def test_the_read_divides_by_the_powers_the_encoder_checks_with() -> None:
    """``layout.RAW_VALUE`` divides by constant powers of ten, the encoder checks with ``pow(10, d)``: the same
    doubles, so every scaled integer reads back as the value that was checked."""
    from plantlink.historian.duckdb.layout import MAX_SCALE, RAW_VALUE

    con = duckdb.connect()
    rng = np.random.default_rng(8)
    iv = rng.integers(-(2**53) + 1, 2**53, 20_000)
    sc = rng.integers(0, MAX_SCALE + 1, len(iv)).astype(np.uint8)
    con.register("t", pa.table({"iv": iv, "sc": sc, "value": pa.nulls(len(iv), pa.float64())}))
    read = con.sql(f"SELECT {RAW_VALUE} AS v, iv::DOUBLE / pow(10, sc) AS checked FROM t").fetchnumpy()
    assert np.array_equal(read["v"].view(np.int64), read["checked"].view(np.int64))


def test_times_read_back_exactly_whatever_their_unit(hist: DuckDBHistorian) -> None:
    """Times in whole seconds, in whole milliseconds (a jitter) and in microseconds, with the day's first and
    last instants: read back exactly from the blocks, and again after a late sample and a second compaction."""
    rng = np.random.default_rng(5)
    base = T0 + np.arange(0, 2 * DAY, 10 * S)
    times = {"seconds": base, "millis": base + rng.integers(-50, 51, len(base)) * 1000,
             "micros": base + rng.integers(1, 999_999, len(base))}
    times["micros"][0], times["micros"][-1] = T0, T0 + DAY - 1  # the day's first and last instants
    ids = hist.register_tags([TagMeta(f"time/{name}", "") for name in times])
    for name, ts in times.items():
        ts = np.unique(np.clip(ts, T0, T0 + 2 * DAY - 1))
        times[name] = ts
        for part in np.array_split(np.arange(len(ts)), 3):
            hist.write(numeric_batch(np.full(len(part), ids[f"time/{name}"]), ts[part], np.ones(len(part)),
                                     np.full(len(part), Quality.GOOD, dtype=np.uint8)))
            hist.flush()
    assert hist.compact(NOW) == 4
    assert hist._cursor().execute(f"SELECT count(*) FROM raw_d{D0}").fetchall() == [(0,)]
    for name, ts in times.items():
        got = hist.raw(ids[f"time/{name}"], T0, T0 + 2 * DAY, limit=10**6).column("ts").cast(pa.int64())
        assert np.array_equal(got.to_numpy(), ts), name
    late = int(times["micros"][5]) + 1  # between two stored samples of one block
    hist.write(numeric_batch([ids["time/micros"]], [late], [2.0], [Quality.GOOD]))
    hist.flush()
    assert hist.compact(NOW) >= 1
    got = hist.raw(ids["time/micros"], T0, T0 + 2 * DAY, limit=10**6).column("ts").cast(pa.int64())
    assert np.array_equal(got.to_numpy(), np.sort(np.append(times["micros"], late)))


def test_te_round_trips_for_any_tag_id_and_day() -> None:
    """``layout.te`` and ``layout.raw_ts`` in SQL, for tag ids beyond ``TE_TAGS`` and days before 1970."""
    from plantlink.historian.duckdb.layout import DAY_US, raw_ts, te

    con = duckdb.connect()
    rng = np.random.default_rng(9)
    for day in (-3, 0, D0, 100_000):
        tags = np.array([0, 1, 2**20 - 1, 2**20, 2**32 - 1, *rng.integers(0, 2**32, 20).tolist()], dtype=np.uint32)
        ts = day * DAY_US + rng.integers(0, DAY_US // 1000, len(tags)) * 1000
        con.register("t", pa.table({"tag_id": tags, "ts": ts, "tu": pa.array([1000] * len(tags), pa.uint32())}))
        back = con.execute(f"SELECT {raw_ts(day).replace('coalesce(ts,', 'coalesce(NULL,')} AS ts FROM "
                           f"(SELECT tag_id, tu, {te(day, 'ts', 'tu')} AS te FROM t)").fetchnumpy()
        assert np.array_equal(np.asarray(back["ts"]), ts)
        con.unregister("t")


def test_a_big_day_of_an_older_store_is_upgraded_within_the_memory_limit(tmp_path: Path) -> None:
    """A day table of an older layout (four columns) holding 8.6 M rows: adding the newer columns with ``ALTER
    TABLE ADD COLUMN`` needs more memory than a 16MB limit (DuckDB builds the column in memory), the copy at
    open does not; every row reads back the same, in the same order, and a copy a crash left is dropped."""
    path = tmp_path / "old.duckdb"
    tags, day = 100, D0 + 10
    ts = np.tile(day * DAY + np.arange(86_400, dtype=np.int64) * S, tags)
    tid_of = np.repeat(np.arange(tags), 86_400)
    values = np.round(np.random.default_rng(4).normal(50, 5, len(ts)), 2)
    with DuckDBHistorian(path, memory_limit="1GB") as h:  # the reads of 8.6 M rows need more than the copy
        got = h.register_tags([TagMeta(f"old/t{i}", "") for i in range(tags)])
        ids = np.array([got[f"old/t{i}"] for i in range(tags)], dtype=np.uint32)
        h.write(numeric_batch(ids[tid_of], ts, values, np.full(len(ts), Quality.GOOD, dtype=np.uint8)))
        h.flush()
        before = h.raw_many(ids.tolist(), day * DAY, (day + 1) * DAY, limit=10**7)
    con = duckdb.connect(str(path), config={"memory_limit": "16MB"})
    con.execute(f"CREATE TABLE old AS SELECT tag_id, ts, value, quality FROM raw_d{day}")
    con.execute(f"DROP TABLE raw_d{day}")
    con.execute(f"ALTER TABLE old RENAME TO raw_d{day}")
    con.execute(f"CREATE TABLE raw_d{day}_upgrading (x INTEGER)")  # what a crash in the copy would leave
    with pytest.raises(duckdb.OutOfMemoryException):
        con.execute(f"ALTER TABLE raw_d{day} ADD COLUMN te BIGINT")
    con.close()
    with DuckDBHistorian(path, memory_limit="16MB"):  # the copy, at open
        pass
    with DuckDBHistorian(path, memory_limit="1GB") as h:
        after = h.raw_many(ids.tolist(), day * DAY, (day + 1) * DAY, limit=10**7)
        cols = {c for (c,) in h._cursor().execute(
            f"SELECT column_name FROM duckdb_columns() WHERE table_name = 'raw_d{day}'").fetchall()}
        left = h._cursor().execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%upgrading'"
                                   ).fetchone()
    assert after.num_rows == len(ts) and after.equals(before)
    assert {"te", "tu", "iv", "sc"} <= cols and left == (0,)


def test_a_day_compacted_before_the_blocks_reads_back_and_is_compacted_into_blocks(hist: DuckDBHistorian,
                                                                                     store_path: Path) -> None:
    """A day as the plantlink before the blocks compacted it (eight columns; times as ``te`` in microseconds,
    the exact cents as ``iv``/``sc``, the rest as floats), written here by SQL: read the same after the upgrade
    at open, then compacted into blocks, still the same."""
    from plantlink.historian.duckdb.layout import te

    written = _fill(hist)
    before = {tid: _raw(hist, tid) for tid in written}
    hist.close()
    con = duckdb.connect(str(store_path))
    fits = ("isfinite(value) AND abs(value) < 1e13 AND round(value * 100) / 100 = value "
            "AND NOT (value = 0 AND signbit(value))")
    con.execute("CREATE TABLE old (tag_id UINTEGER NOT NULL, ts BIGINT, value DOUBLE, quality UTINYINT NOT NULL, "
                "iv BIGINT, sc UTINYINT, te BIGINT, tu UINTEGER)")
    con.execute(f"INSERT INTO old SELECT tag_id, NULL, CASE WHEN {fits} THEN NULL ELSE value END, quality, "
                f"CASE WHEN {fits} THEN round(value * 100)::BIGINT END, CASE WHEN {fits} THEN 2 END, "
                f"{te(D0, 'ts', '1')}, 1 FROM raw_d{D0} ORDER BY tag_id, ts")
    assert con.execute("SELECT count(iv) > 0, count(value) > 0 FROM old").fetchone() == (True, True)
    con.execute(f"DROP TABLE raw_d{D0}")
    con.execute(f"ALTER TABLE old RENAME TO raw_d{D0}")
    con.execute(f"DROP TABLE rawb_d{D0}")  # that plantlink made no blocks tables
    con.execute(f"DROP TABLE rawb_d{D0 + 1}")
    con.execute(f"CREATE TABLE rawb_d{D0 + 5} (x INTEGER)")  # one whose raw day is gone: dropped at open
    con.close()
    hist.open()
    names = {n for (n,) in hist._cursor().execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {f"rawb_d{D0}", f"rawb_d{D0 + 1}"} <= names and f"rawb_d{D0 + 5}" not in names
    for tid in written:
        _assert_identical(before[tid], _raw(hist, tid))
    assert hist.compact(NOW) >= 1
    assert hist._cursor().execute(f"SELECT count(*) FROM raw_d{D0}").fetchall() == [(0,)]
    for tid in written:
        _assert_identical(before[tid], _raw(hist, tid))


@pytest.mark.parametrize("n", [1, 2, 3, 5000, 40_000])
def test_blocks_code_any_series_bit_for_bit_within_the_blob_limit(n: int) -> None:
    """The codec alone (``blocks.encode`` and the decoders the SQL functions use): times before 1970 and
    irregular, white-noise floats (the widest blocks), decimals, specials, many qualities."""
    rng = np.random.default_rng(n)
    ts = -DAY + np.cumsum(rng.integers(1, 10**7, n))  # irregular, in order, mostly before 1970
    for value in (rng.normal(0, 1e6, n), np.round(rng.normal(50, 5, n), 2), np.full(n, -0.0),
                  np.where(rng.random(n) < 0.1, np.nan, np.round(np.cumsum(rng.normal(0, 1, n)), 1))):
        quality = rng.choice(np.array([0, 64, 192], np.uint8), n)
        got = blocks.encode(ts, value, quality)
        assert sum(b.n for b in got) == n
        assert max(max(len(b.tb), len(b.vb), len(b.qb)) for b in got) <= blocks.MAX_BLOB
        ns = np.array([b.n for b in got])
        assert np.array_equal(blocks.times_many(np.array([b.t0 for b in got]), ns, [b.tb for b in got]), ts)
        back = blocks.values_many(np.array([b.vm for b in got]), ns, [b.vb for b in got])
        assert np.array_equal(back.view(np.int64), value.view(np.int64))
        assert np.array_equal(blocks.qualities_many(ns, [b.qb for b in got]), quality)


def test_a_block_that_fits_when_halved_does_not_grow_again() -> None:
    """A tag whose first 512 samples code small but whose first 1,024 do not fit (a NaN at 700 makes that block
    float bits): the block size settles at 512 (it once doubled and halved for good)."""
    n = 5_000
    value = np.round(50 + np.cumsum(np.random.default_rng(2).normal(0, 0.05, n)), 2)
    value[700] = np.nan
    ts = np.arange(n, dtype=np.int64) * S
    got = blocks.encode(ts, value, np.full(n, Quality.GOOD, np.uint8))
    assert got[0].n == 512 and sum(b.n for b in got) == n
    back = blocks.values_many(np.array([b.vm for b in got]), np.array([b.n for b in got]), [b.vb for b in got])
    assert np.array_equal(back, value, equal_nan=True)


def test_retention_drops_a_raw_day_with_its_blocks(hist: DuckDBHistorian) -> None:
    written = _fill(hist)
    hist.compact(NOW)
    hist.retention = Retention(raw=(NOW - (T0 + DAY)) / 1e6)  # the first day goes whole
    hist.apply_retention(NOW)
    names = {n for (n,) in hist._cursor().execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert f"raw_d{D0}" not in names and f"rawb_d{D0}" not in names and f"rawb_d{D0 + 1}" in names
    for tid, (ts, _value) in written.items():
        assert np.array_equal(_raw(hist, tid).column("ts").cast(pa.int64()).to_numpy(), ts[ts >= T0 + DAY])
