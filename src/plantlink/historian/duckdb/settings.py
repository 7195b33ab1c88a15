"""The DuckDB historian's resource settings: DuckDB's memory limit and threads, and the write buffer's bound.

Each is a constructor option of ``DuckDBHistorian`` (``open_historian("duckdb", ...)``); when not given, the
environment variable below when set, else the default. ``plantlink run`` and ``plantlink demo`` read the
environment (docs/historian.md, "Memory").
"""

from __future__ import annotations

import os
import re

from plantlink.errors import HistorianError

ENV_MEMORY_LIMIT = "PLANTLINK_HISTORIAN_MEMORY_LIMIT"
ENV_THREADS = "PLANTLINK_HISTORIAN_THREADS"
ENV_FLUSH_ROWS = "PLANTLINK_HISTORIAN_FLUSH_ROWS"
#: DuckDB's buffer pool; queries beyond it spill to ``<store>.tmp`` next to the file. 32MB keeps the historian's
#: part of the process within 256 MiB under sustained ingest of the 7-day reference run (docs/benchmarks.md,
#: "Memory"); a flush of out-of-order samples spread over days fits it since flushes are written in pieces and
#: recomputed a day at a time (``writer``; tests/historian/test_duckdb_memory.py).
DEFAULT_MEMORY_LIMIT = "32MB"
DEFAULT_THREADS = 2
#: Rows buffered before a write starts a flush; the buffer takes at most ``BUFFER_FLUSHES`` times as many
#: before ``has_room`` says no (the runtime's writer then waits for the flush, leaving batches on the bus).
DEFAULT_FLUSH_ROWS = 250_000
BUFFER_FLUSHES = 2


#: A size as DuckDB reads it, with its unit (DuckDB takes ``-1MB`` as no limit at all: refused here).
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def memory_limit(given: str | None) -> str:
    env = os.environ.get(ENV_MEMORY_LIMIT, "").strip()
    text = (given or env or DEFAULT_MEMORY_LIMIT).strip()
    m = _SIZE.fullmatch(text)
    if m is None or float(m.group(1)) <= 0:
        where = "memory_limit" if given else ENV_MEMORY_LIMIT
        raise HistorianError(f"{where} must be a positive size with a unit (e.g. 32MB, 1GiB), got {text!r}")
    return text


def threads(given: int | None) -> int:
    return given or _positive(ENV_THREADS) or DEFAULT_THREADS


def flush_rows(given: int | None) -> int:
    if given is not None:
        return given
    return _positive(ENV_FLUSH_ROWS) or DEFAULT_FLUSH_ROWS


def _positive(env: str) -> int | None:
    text = os.environ.get(env, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise HistorianError(f"{env} must be a positive integer, got {text!r}")
    return int(text)


ENV_SPARSE_MINUTES = "PLANTLINK_HISTORIAN_SPARSE_MINUTES"
#: A tag averaging fewer good samples per minute than this keeps its minutes in raw (one marker row), a minute
#: row (11 columns) of 6 samples costing nearly what the 6 raw rows do; aggregates fold those raw samples into
#: their buckets themselves (``aggregate``). 0 turns it off (every tag's minutes stored).
DEFAULT_SPARSE_MINUTES = 30


def sparse_minutes(given: int | None) -> int:
    """Samples per minute below which compaction leaves a tag's minutes in raw (0: off, every minute stored;
    docs/historian.md, "Sparse tags keep their minutes in raw")."""
    if given is None:
        text = os.environ.get(ENV_SPARSE_MINUTES, "").strip()
        if not text:
            return DEFAULT_SPARSE_MINUTES
        if not text.isdigit():
            raise HistorianError(f"{ENV_SPARSE_MINUTES} must be a non-negative integer, got {text!r}")
        given = int(text)
    if given < 0:
        raise HistorianError(f"sparse_minutes must be a non-negative integer, got {given}")
    return given
