"""Open-time rebuild of the latest-value cache, and retention."""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.historian.base import Retention
from plantlink.historian.duckdb import compaction
from plantlink.historian.duckdb.latest import LatestCache
from plantlink.historian.duckdb.layout import (
    DAY_US,
    MINUTE_US,
    R1M,
    RAW,
    blocks_table,
    in_transaction,
    r1m_bucket,
    raw_ts,
    table,
)
from plantlink.historian.duckdb.layout import raw as raw_rows

_LAST = "SELECT tag_id, max(ts) AS ts, arg_max({{'v': value, 'q': quality}}, ts) AS s FROM {src} GROUP BY tag_id"


def _fold(latest: LatestCache, t: pa.Table, wanted: set[int] | None = None) -> set[int]:
    """Fold one table of (tag, newest sample) rows in, only for the ``wanted`` tags (default: all)."""
    if wanted is not None and t.num_rows:
        t = t.filter(pc.is_in(t.column("tag_id"), pa.array(sorted(wanted), t.column("tag_id").type)))
    if t.num_rows == 0:
        return set()
    s = t.column("s").combine_chunks()
    tag = t.column("tag_id").to_numpy().astype(np.uint32)
    v = s.field("v")
    value, text = (pa.nulls(len(v), pa.float64()), v) if pa.types.is_string(v.type) else (v, None)
    latest.update(tag, t.column("ts").to_numpy(), value, s.field("q").to_numpy(zero_copy_only=False), text)
    return set(tag.tolist())


def rebuild_latest(
    con: duckdb.DuckDBPyConnection, latest: LatestCache, raw_days: set[int], tag_ids: set[int]
) -> np.ndarray:
    """Fill ``latest`` from the store, newest day first, stopping once every tag is found: a tag's latest is
    its sample with the greatest timestamp (the store keeps no arrival order).

    Returns the newest stored numeric timestamp per tag id (what out-of-order detection compares with)."""
    text = con.sql(_LAST.format(src="text_samples")).to_arrow_table()
    remaining = tag_ids - set(text.column("tag_id").to_pylist())
    for d in sorted(raw_days, reverse=True):
        if not remaining:
            break
        remaining -= _fold(latest, con.sql(_LAST.format(src=raw_rows(d))).to_arrow_table(), remaining)
    stored_max = latest.ts.copy()
    _fold(latest, text)
    return stored_max


def apply_retention(
    con: duckdb.DuckDBPyConnection,
    retention: Retention,
    now_us: int,
    days: dict[str, set[int]],
    lock: threading.Lock,
) -> tuple[int, int]:
    """Drop day partitions wholly older than the cutoff, delete older rows of the cutoff's day.

    Returns (rows deleted, tables dropped)."""
    deleted = dropped = 0
    for kind, keep in ((RAW, retention.raw), (R1M, retention.rollup_1m)):
        if keep is None:
            continue
        cutoff = now_us - int(keep * 1e6)
        for d in sorted(days[kind]):
            name = table(kind, d)
            older = f"{raw_ts(d)} < {cutoff}" if kind == RAW else f"{r1m_bucket(d)} + {MINUTE_US} <= {cutoff}"
            if kind == RAW and d * DAY_US < cutoff and d in days[R1M]:
                compaction.keep_minutes(con, d)  # the minutes of sparse tags are read from raw
            if (d + 1) * DAY_US <= cutoff:
                deleted += _samples(con, kind, d, "true", "true")
                with lock:
                    days[kind].discard(d)
                _drop(con, kind, d)
                dropped += 1
            elif d * DAY_US < cutoff:
                deleted += _samples(con, kind, d, older, f"t1 < {cutoff}")  # a block once its last sample is
                con.execute(f"DELETE FROM {name} WHERE {older}")
                if kind == RAW:
                    con.execute(f"DELETE FROM {blocks_table(d)} WHERE t1 < {cutoff}")
        if kind == RAW:
            deleted += _scalar(con, f"DELETE FROM text_samples WHERE ts < {cutoff}")
    return deleted, dropped


def _samples(con: duckdb.DuckDBPyConnection, kind: str, day: int, rows: str, blocks: str) -> int:
    """How many rows of ``kind``'s day match ``rows``, and for a raw day the samples of its blocks that match
    ``blocks``."""
    out = _scalar(con, f"SELECT count(*) FROM {table(kind, day)} WHERE {rows}")
    if kind == RAW:
        out += _scalar(con, f"SELECT coalesce(sum(n), 0) FROM {blocks_table(day)} WHERE {blocks}")
    return out


def _drop(con: duckdb.DuckDBPyConnection, kind: str, day: int) -> None:
    """Drop ``kind``'s table of ``day`` (a raw day with its blocks, in one transaction)."""
    if kind != RAW:
        con.execute(f"DROP TABLE {table(kind, day)}")
        return
    in_transaction(con, f"DROP TABLE {table(RAW, day)}", f"DROP TABLE IF EXISTS {blocks_table(day)}")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
