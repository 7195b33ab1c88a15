"""``ClickHouseHistorian``: the historian on a ClickHouse server (or cluster), or in-process through chDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tsdownsample import MinMaxLTTBDownsampler

from plantlink.errors import HistorianError, QueryError
from plantlink.historian.base import (
    AGGREGATES,
    RAW_MANY_SCHEMA,
    TEXT_TYPES,
    Aggregate,
    Historian,
    Retention,
    TagMeta,
)
from plantlink.historian.clickhouse import queries as q
from plantlink.historian.clickhouse import rollups
from plantlink.historian.clickhouse.client import Client, Retry
from plantlink.historian.clickhouse.pending import RAW_SCHEMA, TEXT_SCHEMA, Pending, Sorted, sort
from plantlink.historian.clickhouse.schema import SCHEMA_VERSION, Layout, ddl
from plantlink.historian.screen import FUTURE_LIMIT_US, Refusals, screen
from plantlink.samples import TS_TYPE, conform, now_us, text_rows

OUT_RAW = pa.schema([("ts", TS_TYPE), ("value", pa.float64()), ("quality", pa.uint8())])
OUT_TEXT = OUT_RAW.set(1, pa.field("value", pa.string()))
LATEST_SCHEMA = pa.schema([("tag_id", pa.uint32()), ("ts", pa.int64()), ("value", pa.float64()),
                           ("quality", pa.uint8()), ("text", pa.string()), ("version", pa.uint64())])


class ClickHouseHistorian(Historian):
    """The historian on ClickHouse (``schema`` describes the tables).

    ``url``: ``clickhouse://user:password@host:8123`` (``clickhouses://`` for TLS) or ``chdb:///a/directory``
    (the engine in this process). ``database``: the store's database (``plantlink``); on a server it must
    exist unless ``create_database``. ``cluster``: the cluster the tables were made for (``plantlink
    historian ddl --cluster``). ``ttl``: give the tables the retention as a ``TTL`` on the server's clock.
    ``write`` buffers (``latest`` sees buffered samples at once) and flushes every ``flush_rows`` rows.
    """

    def __init__(self, url: str, retention: Retention | None = None, *,
                 database: str = "plantlink", cluster: str | None = None, create_database: bool | None = None,
                 flush_rows: int = 500_000, ttl: bool = True, future_limit_us: int = FUTURE_LIMIT_US,
                 retry: Retry | None = None):
        if flush_rows <= 0:
            raise HistorianError(f"flush_rows must be positive, got {flush_rows}")
        if not database.replace("_", "").isalnum():
            raise HistorianError(f"database name {database!r}: letters, digits and _ only")
        # on a cluster an insert into a Distributed table is on its shards when it returns (the rollups read them)
        self.client = Client(url, retry, settings={"distributed_foreground_insert": 1} if cluster else None)
        self.lay = Layout(database, cluster)
        self.retention = retention or Retention()
        self.flush_rows = flush_rows
        self.future_limit_us = future_limit_us
        self._ttl = ttl
        self._create_db = self.client.in_process if create_database is None else create_database
        self._lock = threading.RLock()
        self._open = False
        self._reset()

    def _reset(self) -> None:
        self._pending = Pending()
        self._refusals = Refusals()
        self._types: dict[int, str] = {}
        self._known = np.zeros(1, dtype=bool)
        self._text_tags = np.zeros(1, dtype=bool)
        self._stored_max: dict[int, int] = {}
        self._open_max = -1
        self._stored = 0
        self._buffered_seq = self._durable_seq = 0
        self._last_version = 0

    # -- lifecycle ------------------------------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self._open:
                return
            self.client.open()
            self._reset()
            self._check_database()
            ttl = {name: getattr(self.retention, name) for name in ("raw", "rollup_1m", "rollup_1h")}
            for statement in ddl(self.lay, ttl if self._ttl else None)[1:]:
                self.client.command(statement)
            self.client.insert(self.lay.t("meta"), _meta("schema_version", SCHEMA_VERSION, 1))
            self._load()
            self._open = True

    def _check_database(self) -> None:
        db = self.lay.database
        if self._create_db:
            self.client.command(ddl(self.lay)[0])
        elif not self.client.command(f"SELECT count() FROM system.databases WHERE name = '{db}'"):
            raise HistorianError(f"ClickHouse at {self.client.shown} has no database {db!r}: create it "
                                 f"(CREATE DATABASE {db}, or the script of `plantlink historian ddl`) or pass "
                                 "another database")
        if self.client.command(f"EXISTS TABLE {self.lay.t('meta')}"):
            found = self.client.command(f"SELECT max(value) FROM {self.lay.t('meta')} WHERE key = 'schema_version'")
            if int(found or 0) > SCHEMA_VERSION:
                raise HistorianError(
                    f"ClickHouse at {self.client.shown}, database {db!r}: its tables are schema version {found}, "
                    f"newer than this plantlink's ({SCHEMA_VERSION}): upgrade plantlink")

    def _load(self) -> None:
        meta = self.client.arrow(f"SELECT key, value FROM {self.lay.t('meta')} FINAL").to_pylist()
        self._durable_seq = self._buffered_seq = next((r["value"] for r in meta if r["key"] == "durable_seq"), 0)
        for r in self.client.arrow(f"SELECT tag_id, type FROM {self.lay.t('tags')} FINAL").to_pylist():
            self._types[int(r["tag_id"])] = r["type"]
        self._set_known()
        # the newest time stored (the parts' min-max index answers it without reading the samples): a sample
        # at or before it may be one written again, checked at its flush
        self._open_max = max(int(self.client.command(
            f"SELECT toUnixTimestamp64Micro(max(ts)) FROM {self.lay.t(t)}") or -1) for t in ("raw", "texts"))

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            try:
                self.flush()
            finally:
                self._open = False
                self.client.close()

    def __enter__(self) -> ClickHouseHistorian:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if not self._open:
            raise HistorianError(f"the ClickHouse historian at {self.client.shown} is not open")

    def _versions(self, n: int) -> int:
        """The first of ``n`` arrival versions, above every one handed out (nanoseconds of the clock)."""
        first = max(time.time_ns(), self._last_version + 1)
        self._last_version = first + n - 1
        return first

    # -- tags -----------------------------------------------------------------------------------------------
    def _paths(self) -> dict[str, int]:
        t = self.client.arrow(f"SELECT path, tag_id FROM {self.lay.t('tags')} FINAL")
        return dict(zip(t.column("path").to_pylist(), t.column("tag_id").to_pylist(), strict=True))

    def register_tags(self, tags: Sequence[TagMeta]) -> dict[str, int]:
        with self._lock:
            self._require_open()
            for t in tags:
                if not isinstance(t.path, str) or not t.path.strip():
                    raise HistorianError(f"tag path must be a non-empty string, got {t.path!r}")
            ids = self._paths()
            new = [t for t in dict((t.path, t) for t in tags).values() if t.path not in ids]
            next_id = max(ids.values(), default=0) + 1
            rows = [(next_id + i, t.path, t.unit, t.type) for i, t in enumerate(new)]
            if rows:
                self._insert_tags(rows)
                self._types.update({r[0]: r[3] for r in rows})
                self._set_known()
                ids.update({r[1]: r[0] for r in rows})
            return {t.path: int(ids[t.path]) for t in tags}

    def _insert_tags(self, rows: list[tuple[int, str, str, str]]) -> None:
        version = self._versions(1)
        cols = list(zip(*rows, strict=True))
        self.client.insert(self.lay.t("tags"), pa.table({
            "tag_id": pa.array(cols[0], pa.uint32()), "path": cols[1], "unit": cols[2], "type": cols[3],
            "version": pa.array([version] * len(rows), pa.uint64())}))

    def rename_tags(self, renames: Mapping[str, str]) -> None:
        with self._lock:
            self._require_open()
            ids = self._paths()
            for old, new in renames.items():
                if old not in ids:
                    raise HistorianError(f"cannot rename {old!r}: no such tag")
                if new in ids and new not in renames:
                    raise HistorianError(f"cannot rename {old!r} to {new!r}: that path is taken")
            meta = {r["tag_id"]: r for r in self.tags().to_pylist()}
            # one insert (one block): every new path or none
            self._insert_tags([(ids[o], n, meta[ids[o]]["unit"], meta[ids[o]]["type"]) for o, n in renames.items()])

    def _set_known(self) -> None:
        size = max(self._types, default=0) + 1
        self._known = np.zeros(size, dtype=bool)
        self._known[list(self._types)] = True
        self._text_tags = np.zeros(size, dtype=bool)
        self._text_tags[[t for t, k in self._types.items() if k in TEXT_TYPES]] = True

    def tags(self) -> pa.Table:
        t = self.client.arrow(f"SELECT tag_id, path, unit, type FROM {self.lay.t('tags')} FINAL ORDER BY tag_id")
        return pa.table({"tag_id": t.column("tag_id").cast(pa.uint32()), "path": t.column("path"),
                         "unit": t.column("unit"), "type": t.column("type")})

    # -- writing --------------------------------------------------------------------------------------------
    def write(self, batch: pa.RecordBatch, seq: int | None = None) -> None:
        self._require_open()
        try:
            batch = conform(batch)
        except ValueError as exc:
            raise HistorianError(f"batch refused: {exc}") from None
        batch = screen(batch, self._known, now_us(), self._refusals, self.future_limit_us)
        with self._lock:
            if batch.num_rows:
                tag = batch.column("tag_id").to_numpy()
                text = text_rows(batch)
                typed = self._text_tags[tag] & batch.column("value").is_null().to_numpy(zero_copy_only=False)
                if typed.any():
                    text = typed if text is None else text | typed
                self._pending.add(batch, text, self._versions(batch.num_rows))
            if seq is not None:
                self._buffered_seq = max(self._buffered_seq, seq)
            if self._pending.rows >= self.flush_rows:
                self.flush()

    def flush(self) -> int:
        with self._lock:
            self._require_open()
            raw, texts, top = self._pending.take()
            seq = self._buffered_seq
            try:
                n = self._store(sort(raw, RAW_SCHEMA), sort(texts, TEXT_SCHEMA))
            except HistorianError as exc:
                self._pending.put_back(raw, texts)
                raise HistorianError(f"{exc} (the samples are kept in memory)") from exc
            if seq > self._durable_seq:
                self.client.insert(self.lay.t("meta"), _meta("durable_seq", seq, self._versions(1)))
                self._durable_seq = seq
            self._pending.forget_latest(top)
            self._stored += n
            return n

    def _store(self, numeric: Sorted | None, text: Sorted | None) -> int:
        n = 0
        numeric_late = np.zeros(0, dtype=bool)
        for chunk, table in ((numeric, "raw"), (text, "texts")):
            if chunk is None:
                continue
            late = self._late(chunk)
            if table == "raw":
                numeric_late = late
            again = chunk.duplicates + self._already_stored(table, chunk, late)
            self.client.insert(self.lay.t(table), chunk.table)
            if again:
                self._refusals.add("duplicate", again, f"tag id {int(chunk.tag[0])}")
            for tag, ts in zip(*_group_max(chunk.tag, chunk.ts), strict=True):
                self._stored_max[tag] = max(self._stored_max.get(tag, -1), ts)
            n += len(chunk.tag)
        if numeric is not None:
            rollups.update(self.client, self.lay, numeric.tag, numeric.ts, numeric_late, self._versions)
        return n

    def _late(self, chunk: Sorted) -> np.ndarray:
        """The samples not after their tag's newest stored time (or the store's at open): maybe written again."""
        tags, first = np.unique(chunk.tag, return_index=True)
        top = np.array([max(self._stored_max.get(int(t), -1), self._open_max) for t in tags], dtype=np.int64)
        counts = np.diff(np.append(first, len(chunk.tag)))
        return chunk.ts <= np.repeat(top, counts)

    def _already_stored(self, table: str, chunk: Sorted, late: np.ndarray) -> int:
        """How many (tag, time) of the chunk the store holds already (of the ``late`` samples)."""
        cand = np.flatnonzero(late)
        found = 0
        for part in np.array_split(cand, max(1, len(cand) // 5000 + 1)) if len(cand) else []:
            pairs = ",".join(f"({int(chunk.tag[i])},{int(chunk.ts[i])})" for i in part)
            ids = q.ids_lit(sorted({int(t) for t in chunk.tag[part]}))
            found += int(self.client.command(
                f"SELECT count() FROM (SELECT DISTINCT tag_id, ts FROM {self.lay.t(table)} WHERE tag_id IN {ids} "
                f"AND (tag_id, toUnixTimestamp64Micro(ts)) IN ({pairs}))"))
        return found

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
    def _check_ids(self, tag_ids: Sequence[int], field: str = "tag_ids") -> list[int]:
        ids = [int(t) for t in np.asarray(tag_ids, dtype=np.int64).reshape(-1)]
        unknown = sorted({t for t in ids if t not in self._types})
        if unknown:
            raise QueryError(f"unknown tag ids {unknown[:10]}", field=field)
        return ids

    def _is_text(self, tag_id: int) -> bool:
        return self._types.get(tag_id) in TEXT_TYPES

    def latest(self, tag_ids: Sequence[int]) -> pa.Table:
        self._require_open()
        ids = self._check_ids(tag_ids)
        with self._lock:  # before the store: a flush in between leaves the samples in one of the two
            pending = dict(self._pending.latest)
        t = LATEST_SCHEMA.empty_table()
        if ids:
            t = self.client.arrow(
                f"SELECT tag_id, toUnixTimestamp64Micro(ts) AS ts, value, quality, text, version "
                f"FROM {self.lay.t('latest')} FINAL WHERE tag_id IN {q.ids_lit(sorted(set(ids)))}").cast(LATEST_SCHEMA)
        if pending:
            rows = list(zip(*((tag, *rest[1:], rest[0]) for tag, rest in pending.items()), strict=True))
            t = pa.concat_tables([t, pa.table(dict(zip(LATEST_SCHEMA.names, rows, strict=True)),
                                              schema=LATEST_SCHEMA)])
            t = t.take(pc.sort_indices(t, [("tag_id", "ascending"), ("version", "descending")]))
            tag = t.column("tag_id").to_numpy()
            t = t.filter(pa.array(np.append(True, tag[1:] != tag[:-1]) if len(tag) else np.zeros(0, bool)))
        out = t.take(pc.index_in(pa.array(ids, pa.uint32()), value_set=t.column("tag_id")))
        return pa.table({"tag_id": pa.array(ids, pa.uint32()), "ts": out.column("ts").cast(TS_TYPE),
                         "value": out.column("value"), "quality": out.column("quality"), "text": out.column("text")})

    def raw(self, tag_id: int, start_us: int, end_us: int, limit: int = 100_000) -> pa.Table:
        (tid,) = self._check_ids([tag_id], "tag_id")
        _check_range(start_us, end_us)
        if limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}", field="limit")
        table, schema = ("texts", OUT_TEXT) if self._is_text(tid) else ("raw", OUT_RAW)
        return self.client.arrow(q.raw(self.lay, table, tid, start_us, end_us, limit)).cast(schema)

    def last_before(self, tag_id: int, before_us: int) -> pa.Table:
        (tid,) = self._check_ids([tag_id], "tag_id")
        if not isinstance(before_us, int):
            raise QueryError("before_us must be integer microseconds", field="before_us")
        table, schema = ("texts", OUT_TEXT) if self._is_text(tid) else ("raw", OUT_RAW)
        return self.client.arrow(q.last_before(self.lay, table, tid, before_us)).cast(schema)

    def raw_many(self, tag_ids: Sequence[int], start_us: int, end_us: int, limit: int = 100_000) -> pa.Table:
        ids = self._check_ids(tag_ids)
        _check_range(start_us, end_us)
        if limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}", field="limit")
        text = [t for t in ids if self._is_text(t)]
        if text:
            raise QueryError(f"tag ids {text[:10]} hold text: read them one by one with raw", field="tag_ids")
        if not ids or limit == 0:
            return RAW_MANY_SCHEMA.empty_table()
        return self.client.arrow(q.raw_many(self.lay, sorted(set(ids)), start_us, end_us, limit)).cast(RAW_MANY_SCHEMA)

    def aggregate(self, tag_ids: Sequence[int], start_us: int, end_us: int, interval_us: int,
                  aggregates: Sequence[Aggregate] = AGGREGATES) -> pa.Table:
        ids = self._check_ids(tag_ids)
        if not ids:
            raise QueryError("no tag ids given", field="tag_ids")
        _check_range(start_us, end_us)
        if not isinstance(interval_us, int) or interval_us <= 0:
            raise QueryError(f"interval_us must be a positive integer, got {interval_us!r}", field="interval_us")
        unknown = [a for a in aggregates if a not in AGGREGATES]
        if unknown or not aggregates:
            raise QueryError(f"unknown aggregates {unknown}; choose from {list(AGGREGATES)}", field="aggregates")
        uniq = list(dict.fromkeys(ids))
        result = self.client.arrow(q.aggregate(self.lay, uniq, start_us, end_us, interval_us, list(aggregates)))
        return _in_order(result, uniq, list(aggregates))

    def downsample(self, tag_id: int, start_us: int, end_us: int, n_out: int = 1000) -> pa.Table:
        (tid,) = self._check_ids([tag_id], "tag_id")
        _check_range(start_us, end_us)
        if n_out < 5:
            raise QueryError(f"n_out must be at least 5, got {n_out}", field="n_out")
        t = self.client.arrow(q.series(self.lay, tid, start_us, end_us))
        ts, value = t.column("ts").to_numpy(), t.column("value").to_numpy()
        if len(ts) > n_out:
            idx = MinMaxLTTBDownsampler().downsample(ts, value, n_out=n_out - 2, parallel=len(ts) > 200_000)
            idx = np.union1d(idx.astype(np.int64), np.array([np.argmin(value), np.argmax(value)], dtype=np.int64))
            ts, value = ts[idx], value[idx]
        return pa.table({"ts": pa.array(ts, pa.int64()).cast(TS_TYPE), "value": pa.array(value, pa.float64())})

    # -- retention ------------------------------------------------------------------------------------------
    def apply_retention(self, now_us: int) -> int:
        with self._lock:
            self._require_open()
            return rollups.apply_retention(self.client, self.lay, self.retention, now_us)


def _meta(key: str, value: int, version: int) -> pa.Table:
    return pa.table({"key": [key], "value": pa.array([value], pa.int64()), "version": pa.array([version], pa.uint64())})


def _check_range(start_us: int, end_us: int) -> None:
    if not isinstance(start_us, int) or not isinstance(end_us, int):
        raise QueryError("start_us and end_us must be integer microseconds", field="start_us")
    if start_us >= end_us:
        raise QueryError(f"empty or reversed range: start_us={start_us} >= end_us={end_us}", field="end_us")


def _group_max(tag: np.ndarray, ts: np.ndarray) -> tuple[list[int], list[int]]:
    """Per tag of a (tag, ts)-sorted chunk, its greatest ts."""
    last = np.ones(len(tag), dtype=bool)
    last[:-1] = tag[1:] != tag[:-1]
    return tag[last].astype(np.int64).tolist(), ts[last].astype(np.int64).tolist()


def _in_order(result: pa.Table, tag_ids: list[int], aggregates: list[str]) -> pa.Table:
    """Rows in the order the tags were asked, then by bucket; typed columns."""
    pos = np.zeros(max(tag_ids) + 1, dtype=np.int64)
    pos[np.asarray(tag_ids, dtype=np.int64)] = np.arange(len(tag_ids))
    tags = result.column("tag_id").to_numpy().astype(np.int64)
    buckets = result.column("bucket").to_numpy().astype(np.int64)
    order = np.lexsort((buckets, pos[tags]))
    result = result.take(pa.array(order, pa.int64()))
    out = {"tag_id": result.column("tag_id").cast(pa.uint32()),
           "bucket": result.column("bucket").cast(pa.int64()).cast(TS_TYPE)}
    for a in aggregates:
        out[a] = result.column(a).cast(pa.int64() if a == "count" else pa.float64())
    return pa.table(out)
