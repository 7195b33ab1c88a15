"""``DuckDBHistorian``: the embedded historian (one DuckDB file, day partitions, 1-minute, 1-hour and 1-day
rollups, closed days compacted)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from plantlink.errors import HistorianError, QueryError
from plantlink.historian.base import AGGREGATES, TEXT_TYPES, Aggregate, Historian, Retention, SqlAnswer, TagMeta
from plantlink.historian.duckdb import aggregate as agg
from plantlink.historian.duckdb import compaction, hourly, opening, persisted, queries, reclaim, settings
from plantlink.historian.duckdb.buffer import STORE_SCHEMA, TEXT_STORE_SCHEMA, Chunk, WriteBuffer
from plantlink.historian.duckdb.intake import TagKinds, add_split, check_batch
from plantlink.historian.duckdb.latest import LatestCache
from plantlink.historian.duckdb.layout import DAY_US, R1M, RAW, existing
from plantlink.historian.duckdb.maintenance import apply_retention
from plantlink.historian.duckdb.sql import SqlRunner
from plantlink.historian.duckdb.writer import insert, write_chunks
from plantlink.historian.screen import FUTURE_LIMIT_US, Refusals, screen
from plantlink.samples import now_us


class DuckDBHistorian(Historian):
    """Embedded historian on one DuckDB file.

    ``write`` buffers batches (the latest-value cache updates at once) and flushes when ``flush_rows`` rows
    are buffered (in a worker thread when ``background_flush``: the buffer grows to ``max_buffer_rows``
    meanwhile, then a write waits for that flush; ``has_room`` tells a caller beforehand, ``wait_for_room``
    waits off its event loop: ``settings``), on ``flush()`` and on ``close()``. Queries see flushed data.
    A failed background flush keeps its samples buffered and raises from the next ``write``.
    Safe for one writer thread plus any number of reader threads: each thread queries through its own cursor.
    ``latest()`` returns ``tag_id, ts, value, quality, text``: ``value`` for numeric tags, ``text`` for text tags.
    ``write(batch, seq)``: a flush stores the highest ``seq`` it takes in the same transaction (``durable_seq``).
    """

    def __init__(
        self,
        path: str | Path,
        retention: Retention | None = None,
        *,
        flush_rows: int | None = None,
        background_flush: bool = True,
        threads: int | None = None,
        memory_limit: str | None = None,
        sparse_minutes: int | None = None,
        future_limit_us: int = FUTURE_LIMIT_US,
        read_only: bool = False,
    ):
        flush_rows = settings.flush_rows(flush_rows)
        if flush_rows <= 0:
            raise HistorianError(f"flush_rows must be positive, got {flush_rows}")
        self.path = Path(path)
        self.retention = retention or Retention()
        self.flush_rows = flush_rows
        self.max_buffer_rows = settings.BUFFER_FLUSHES * flush_rows
        self.future_limit_us = future_limit_us
        #: compaction leaves the minutes of tags averaging fewer good samples a minute in raw (0: off)
        self.sparse_minutes = settings.sparse_minutes(sparse_minutes)
        #: opened read-only (``plantlink serve``): several processes may read one file that no process writes
        self.read_only = read_only
        self._refusals = Refusals()
        self._background = background_flush
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[int] | None = None
        self._config: dict[str, Any] = {"threads": settings.threads(threads),
                                        "memory_limit": settings.memory_limit(memory_limit)}
        self._con: duckdb.DuckDBPyConnection | None = None
        self._write_lock = threading.RLock()  # flushes, registration, retention, open/close
        self._state_lock = threading.Lock()  # buffers, latest cache, partition sets, cursors
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._sql: SqlRunner | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._buf = WriteBuffer(STORE_SCHEMA)
        self._text_buf = WriteBuffer(TEXT_STORE_SCHEMA)
        self._latest = LatestCache()
        self._stored_max = np.zeros(0, dtype=np.int64)
        self._kinds = TagKinds()
        self._types: dict[int, str] = {}
        self._days: dict[str, set[int]] = {RAW: set(), R1M: set()}
        self._stored = 0
        self._buffered_seq = 0  # the highest WAL sequence number written into the buffers
        self._durable_seq = 0
        self._r1h_upto = 0  # 1-hour rollups are complete before this instant (0: none)
        self._r1d_upto = 0  # 1-day rollups likewise
        self._touched = compaction.Touched()

    # -- lifecycle ------------------------------------------------------------------------------------------
    def open(self) -> None:
        with self._write_lock:
            if self._con is not None:
                return
            con = opening.connect(self.path, self.read_only, self._config)
            self._reset_state()
            row = con.execute("SELECT seq FROM wal_position WHERE id = 1").fetchone()
            self._durable_seq = self._buffered_seq = int(row[0]) if row else 0
            self._days = existing(con)
            self._touched.mark(compaction.marked_days(con, self._days[R1M]))
            for tag_id, tag_type in con.execute("SELECT tag_id, type FROM tags").fetchall():
                self._types[int(tag_id)] = tag_type
            self._set_known()
            self._stored_max = opening.load_latest(con, self._latest, self._days[RAW], set(self._types),
                                                   self.read_only)
            if self.read_only:  # nothing is created or written: what the writer kept is read
                self._r1h_upto, self._r1d_upto = hourly.built_upto(con)
            else:
                self._r1h_upto, self._r1d_upto = hourly.create(con)
                compaction.create(con)
                reclaim.create(con)
            self._con = con

    def close(self) -> None:
        if self._con is None:
            return
        # Wait for a background flush OUTSIDE the write lock: that flush takes the lock itself, so waiting for
        # it while holding the lock deadlocks. A failed background flush put its samples back in the buffer;
        # the final flush below retries them (and raises if it fails too).
        with contextlib.suppress(HistorianError):
            self._wait_pending()
        executor = None
        with self._write_lock:
            if self._con is None:
                return
            try:
                self.flush()
            finally:
                executor, self._executor = self._executor, None
                with self._state_lock:
                    for cur in self._cursors:
                        cur.close()
                    self._cursors.clear()
                    if self._sql is not None:
                        self._sql.close()
                        self._sql = None
                    self._local = threading.local()
                self._con.close()
                self._con = None
        if executor is not None:
            executor.shutdown(wait=True)

    def __enter__(self) -> DuckDBHistorian:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise HistorianError(f"historian {self.path} is not open")
        return self._con

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        con = self._require_open()
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cur", None)
        if cur is None:
            with self._state_lock:
                cur = con.cursor()
                self._cursors.append(cur)
            self._local.cur = cur
        return cur

    def _snapshot(self) -> queries.Snapshot:
        with self._state_lock:
            return queries.Snapshot(raw=frozenset(self._days[RAW]), r1m=frozenset(self._days[R1M]),
                                    r1h_upto=self._r1h_upto, r1d_upto=self._r1d_upto, marked=self._touched.marked())

    # -- tags -----------------------------------------------------------------------------------------------
    def register_tags(self, tags: Sequence[TagMeta]) -> dict[str, int]:
        with self._write_lock:
            con = self._require_open()
            for t in tags:
                if not isinstance(t.path, str) or not t.path.strip():
                    raise HistorianError(f"tag path must be a non-empty string, got {t.path!r}")
            ids = dict(con.execute("SELECT path, tag_id FROM tags").fetchall())
            new = [t for t in dict((t.path, t) for t in tags).values() if t.path not in ids]
            next_id = max(ids.values(), default=0) + 1
            rows = [(next_id + i, t.path, t.unit, t.type) for i, t in enumerate(new)]
            if rows:
                insert(con, "tags", pa.table(list(zip(*rows, strict=True)), names=["tag_id", "path", "unit", "type"]))
                with self._state_lock:
                    self._types.update({r[0]: r[3] for r in rows})
                    self._set_known()
                ids.update({r[1]: r[0] for r in rows})
            return {t.path: int(ids[t.path]) for t in tags}

    def rename_tags(self, renames: Mapping[str, str]) -> None:
        with self._write_lock:
            con = self._require_open()
            ids = dict(con.execute("SELECT path, tag_id FROM tags").fetchall())
            for old, new in renames.items():
                if old not in ids:
                    raise HistorianError(f"cannot rename {old!r}: no such tag")
                if new in ids and new not in renames:
                    raise HistorianError(f"cannot rename {old!r} to {new!r}: that path is taken")
            con.execute("BEGIN")
            try:
                for old in renames:  # through a temporary path: a swap (a -> b, b -> a) is a rename too
                    con.execute("UPDATE tags SET path = ? WHERE path = ?", [f"\0rename/{ids[old]}", old])
                for old, new in renames.items():
                    con.execute("UPDATE tags SET path = ? WHERE path = ?", [new, f"\0rename/{ids[old]}"])
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise HistorianError(f"renaming tags failed, nothing renamed: {exc}") from exc

    def _set_known(self) -> None:
        self._kinds = TagKinds.of(self._types)

    def tags(self) -> pa.Table:
        t = self._cursor().sql("SELECT tag_id, path, unit, type FROM tags ORDER BY tag_id").to_arrow_table()
        return t.set_column(0, "tag_id", t.column("tag_id").cast(pa.uint32()))

    # -- writing --------------------------------------------------------------------------------------------
    def write(self, batch: pa.RecordBatch, seq: int | None = None) -> None:
        self._require_open()
        if self.read_only:
            raise HistorianError(f"historian {self.path} is open read-only")
        batch = screen(check_batch(batch), self._kinds.known, now_us(), self._refusals, self.future_limit_us)
        if batch.num_rows == 0:  # all refused: its log position is still taken (a replay would refuse it again)
            with self._state_lock:
                if seq is not None:
                    self._buffered_seq = max(self._buffered_seq, seq)
            return
        tag = batch.column("tag_id").to_numpy()
        ts = batch.column("ts").view(pa.int64()).to_numpy()
        text = self._kinds.text_rows(batch, tag)
        with self._state_lock:
            self._latest.update(tag, ts, batch.column("value"), batch.column("quality").to_numpy(),
                                batch.column("text"))
            add_split(batch, text, self._buf, self._text_buf)
            if seq is not None:
                self._buffered_seq = max(self._buffered_seq, seq)
            full = self._buf.rows >= self.flush_rows
        if full:
            self._flush_full()

    def settings(self) -> dict[str, Any]:
        """DuckDB's ``threads`` and ``memory_limit``, ``flush_rows`` and ``max_buffer_rows`` in effect."""
        return {**self._config, "flush_rows": self.flush_rows, "max_buffer_rows": self.max_buffer_rows}

    def has_room(self) -> bool:
        """False once ``max_buffer_rows`` rows wait for a flush: the caller should ``wait_for_room`` (in a
        worker thread) before the next ``write``; a write then still works, the buffer just grows."""
        return self._buf.rows + self._text_buf.rows < self.max_buffer_rows

    def wait_for_room(self) -> None:
        """Block until the buffer is below ``max_buffer_rows``: wait for the running flush, flush if need be."""
        with contextlib.suppress(HistorianError):  # a failed background flush raises from the next write
            self._wait_pending()
        if not self.has_room():
            self.flush()

    def _wait_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # re-raises a failed background flush (its samples went back to the buffer)

    def _flush_full(self) -> None:
        if not self._background:
            self.flush()
            return
        running = self._pending is not None and not self._pending.done()
        if running and self._buf.rows + self._text_buf.rows <= self.max_buffer_rows:
            return  # a flush is running: buffer on (to the bound); the next write past it starts another
        self._wait_pending()  # the bound reached: wait (``has_room`` lets a caller wait off its event loop)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="historian-flush")
        self._pending = self._executor.submit(self.flush)

    def flush(self) -> int:
        with self._write_lock:
            con = self._require_open()
            with self._state_lock:
                numeric, text = self._buf.take(), self._text_buf.take()
                seq = self._buffered_seq
                changed = self._latest.take_changed()  # what the buffers hold is what these rows say
                rows = self._latest.rows(changed) if numeric or text else None
            if rows is None:
                with self._state_lock:
                    self._latest.mark_changed(changed)
                return 0
            try:
                chunk = self._buf.sort(numeric) if numeric else None
                text_chunk = self._text_buf.sort(text) if text else None
                new_max = self._stored_max if chunk is None else persisted.update_max(self._stored_max, chunk)
                also = self._in_flush(chunk, rows, new_max)
                new_days = write_chunks(con, chunk, text_chunk, self._days, self._stored_max,
                                        seq if seq > self._durable_seq else None, in_transaction=also)
            except Exception as exc:
                with self._state_lock:
                    self._buf.put_back(numeric)
                    self._text_buf.put_back(text)
                    self._latest.mark_changed(changed)
                raise HistorianError(f"flush to {self.path} failed, samples kept in memory: {exc}") from exc
            n = (len(chunk) if chunk else 0) + (len(text_chunk) if text_chunk else 0)
            for c in (chunk, text_chunk):
                if c is not None and c.duplicates:
                    self._refusals.add("duplicate", c.duplicates, f"tag id {int(c.tag[0])}")
            with self._state_lock:
                for kind, days in new_days.items():
                    self._days[kind] |= days
                self._stored += n
            self._durable_seq = max(self._durable_seq, seq)
            self._stored_max = new_max
            if chunk is not None:
                self._touched.note(int(chunk.ts.min()) // DAY_US)
            return n

    def _in_flush(self, chunk: Chunk | None, rows: pa.Table,
                  new_max: np.ndarray) -> Callable[[duckdb.DuckDBPyConnection], None]:
        """What a flush's transaction does besides the samples: lower ``r1h_built`` when the chunk reaches
        into built hours, upsert the changed latest values and newest stored timestamps."""
        lower = self._unbuild_hours(chunk)
        maxima = persisted.maxima(new_max, np.unique(chunk.tag)) if chunk is not None and len(chunk) else None

        def run(con: duckdb.DuckDBPyConnection) -> None:
            if lower is not None:
                lower(con)
            persisted.save(con, rows, maxima)
        return run

    def _unbuild_hours(self, chunk: Chunk | None) -> Callable[[duckdb.DuckDBPyConnection], None] | None:
        """For a chunk with samples in hours already rolled up: queries read minutes there from now on, and
        the flush's transaction lowers ``r1h_built`` (the next build recomputes those hours)."""
        if chunk is None or not len(chunk) or not self._r1h_upto:
            return None
        min_ts = int(chunk.ts.min())
        if min_ts >= self._r1h_upto:
            return None
        hour = min_ts - min_ts % hourly.HOUR_US
        day = min(self._r1d_upto, min_ts - min_ts % DAY_US)
        with self._state_lock:
            self._r1h_upto, self._r1d_upto = hour, day
        return lambda c: hourly.lower(c, hour, day)

    def build_rollups(self, now_us: int) -> int:
        """Build the 1-hour and 1-day rollups of the hours and days that ended (``hourly``), then compact the
        closed days (``compact``); returns the rollup rows built."""
        with self._write_lock:
            con = self._require_open()
            with self._state_lock:
                days, upto = set(self._days[R1M]), self._r1h_upto
            built, upto = hourly.build(con, upto, days, now_us)
            days_built, upto_d = hourly.build_days(con, self._r1d_upto, upto)
            if days_built:  # a day's hours are complete: keep r1h in (tag, time) order for one-tag trends
                hourly.sort_hours(con)
            with self._state_lock:
                self._r1h_upto, self._r1d_upto = upto, upto_d
        self.compact(now_us)
        return built + days_built

    # -- compaction (compaction.py) -------------------------------------------------------------------------
    def compact(self, now_us: int) -> int:
        """Rewrite the closed day tables that are due (``compaction.run``: copied without the write lock,
        swapped under it); returns how many were swapped."""
        return compaction.run(self._cursor(), self._require_open, self._write_lock, self._snapshot, self._touched,
                              now_us, self.sparse_minutes)

    @property
    def samples_stored(self) -> int:
        return self._stored

    @property
    def refused(self) -> dict[str, int]:
        return self._refusals.as_dict()

    @property
    def durable_seq(self) -> int:
        return self._durable_seq

    # -- reading --------------------------------------------------------------------------------------------
    def _check_ids(self, tag_ids: Sequence[int], field: str = "tag_ids") -> np.ndarray:
        ids = np.asarray(tag_ids, dtype=np.int64).reshape(-1)
        known = self._kinds.known
        unknown = ids[(ids < 0) | (ids >= len(known))].tolist()
        unknown += ids[(ids >= 0) & (ids < len(known))][~known[ids[(ids >= 0) & (ids < len(known))]]].tolist()
        if unknown:
            raise QueryError(f"unknown tag ids {sorted(set(unknown))[:10]}", field=field)
        return ids

    def latest(self, tag_ids: Sequence[int]) -> pa.Table:
        self._require_open()
        ids = self._check_ids(tag_ids)
        with self._state_lock:
            return self._latest.table(ids)

    def raw(self, tag_id: int, start_us: int, end_us: int, limit: int = 100_000) -> pa.Table:
        self._check_ids([tag_id], "tag_id")
        queries.check_range(start_us, end_us)
        if limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}", field="limit")
        cur = self._cursor()
        if self._types.get(int(tag_id)) in TEXT_TYPES or self._latest.is_text(int(tag_id)):
            return queries.raw_text(cur, int(tag_id), start_us, end_us, limit)
        return self._retry(lambda: queries.raw(cur, self._snapshot(), int(tag_id), start_us, end_us, limit))

    def last_before(self, tag_id: int, before_us: int) -> pa.Table:
        self._check_ids([tag_id], "tag_id")
        if not isinstance(before_us, int):
            raise QueryError("before_us must be integer microseconds", field="before_us")
        cur, tid = self._cursor(), int(tag_id)
        text = self._types.get(tid) in TEXT_TYPES or self._latest.is_text(tid)
        return self._retry(lambda: queries.last_before(cur, self._snapshot(), tid, before_us, text))

    def raw_many(self, tag_ids: Sequence[int], start_us: int, end_us: int, limit: int = 100_000) -> pa.Table:
        ids = self._check_ids(tag_ids)
        queries.check_range(start_us, end_us)
        if limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}", field="limit")
        text = [int(t) for t in ids if self._types.get(int(t)) in TEXT_TYPES or self._latest.is_text(int(t))]
        if text:
            raise QueryError(f"tag ids {text[:10]} hold text: read them one by one with raw", field="tag_ids")
        cur = self._cursor()
        uniq = sorted({int(t) for t in ids})
        return self._retry(lambda: queries.raw_many(cur, self._snapshot(), uniq, start_us, end_us, limit))

    def aggregate(
        self,
        tag_ids: Sequence[int],
        start_us: int,
        end_us: int,
        interval_us: int,
        aggregates: Sequence[Aggregate] = AGGREGATES,
    ) -> pa.Table:
        ids = self._check_ids(tag_ids)
        if len(ids) == 0:
            raise QueryError("no tag ids given", field="tag_ids")
        queries.check_range(start_us, end_us)
        if not isinstance(interval_us, int) or interval_us <= 0:
            raise QueryError(f"interval_us must be a positive integer, got {interval_us!r}", field="interval_us")
        queries.check_aggregates(aggregates)
        uniq = list(dict.fromkeys(ids.tolist()))
        cur = self._cursor()
        return self._retry(
            lambda: agg.aggregate(cur, self._snapshot(), uniq, start_us, end_us, interval_us, list(aggregates))
        )

    def downsample(self, tag_id: int, start_us: int, end_us: int, n_out: int = 1000) -> pa.Table:
        self._check_ids([tag_id], "tag_id")
        queries.check_range(start_us, end_us)
        if n_out < 5:
            raise QueryError(f"n_out must be at least 5, got {n_out}", field="n_out")
        cur = self._cursor()
        return self._retry(lambda: queries.downsample(cur, self._snapshot(), int(tag_id), start_us, end_us, n_out))

    def sql(self, query: str, *, limit: int, timeout_s: float) -> SqlAnswer:
        """Read-only SQL (``historian.duckdb.sql``): one SELECT, no file access, ``limit`` rows, ``timeout_s``."""
        con = self._require_open()
        with self._state_lock:
            if self._sql is None:
                self._sql = SqlRunner(con)
            runner, days = self._sql, set(self._days[RAW])
        return runner.run(query, days, limit, timeout_s)

    def _retry(self, run: Callable[[], pa.Table]) -> pa.Table:
        """Run a query; once more if a partition vanished under it (retention dropped a day meanwhile)."""
        try:
            return run()
        except duckdb.CatalogException:
            return run()

    # -- retention ------------------------------------------------------------------------------------------
    def apply_retention(self, now_us: int) -> int:
        with self._write_lock:
            con = self._require_open()
            deleted, _dropped = apply_retention(con, self.retention, now_us, self._days, self._state_lock)
            self._touched.note_all()  # a copy made before these deletes is stale
            deleted += hourly.apply_retention(con, self.retention.rollup_1h, now_us)
            compaction.forget_dropped(con)
            if self.retention.raw is not None:
                with self._state_lock:
                    self._latest.forget_before(now_us - int(self.retention.raw * 1e6))
                persisted.forget_before(con, now_us - int(self.retention.raw * 1e6))
            return deleted
