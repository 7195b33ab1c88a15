"""The historian interface. Backends (DuckDB embedded, ClickHouse scaled out) implement it; nothing above
this module speaks a backend's SQL dialect.

Time arguments are integer microseconds since the Unix epoch (UTC). Results are ``pyarrow.Table``s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from plantlink.errors import HistorianError, QueryError
from plantlink.samples import TS_TYPE

Aggregate = Literal["min", "max", "mean", "twa", "first", "last", "count"]
AGGREGATES: tuple[Aggregate, ...] = ("min", "max", "mean", "twa", "first", "last", "count")
#: ``TagMeta.type`` values of tags whose samples are text (stored apart from numeric samples)
TEXT_TYPES = frozenset({"string", "text", "str"})
#: What :meth:`Historian.raw_many` answers.
RAW_MANY_SCHEMA = pa.schema([("tag_id", pa.uint32()), ("ts", TS_TYPE), ("value", pa.float64()),
                             ("quality", pa.uint8())])


@dataclass(frozen=True)
class TagMeta:
    """What the historian records about a tag: its path (the stable key), unit and type."""

    path: str
    unit: str = ""
    type: str = "float"


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept (seconds); ``None`` keeps it forever."""

    raw: float | None = 400 * 86400.0
    rollup_1m: float | None = None
    rollup_1h: float | None = None


@dataclass(frozen=True)
class SqlAnswer:
    """What :meth:`Historian.sql` answers: the rows (at most the limit) and whether there were more."""

    table: pa.Table
    truncated: bool


class Historian(ABC):
    """Stores sample batches and answers time-series queries."""

    @abstractmethod
    def open(self) -> None:
        """Open or create the store (idempotent)."""

    @abstractmethod
    def close(self) -> None:
        """Flush everything buffered and close. Every sample accepted by ``write`` is stored after this."""

    @abstractmethod
    def register_tags(self, tags: Sequence[TagMeta]) -> dict[str, int]:
        """Ensure each tag exists; return path -> tag id. Ids are stable across restarts."""

    def rename_tags(self, renames: Mapping[str, str]) -> None:
        """Give tags new paths (former path -> new path), keeping their ids and so their samples: all or none.
        A backend that cannot refuses (``HistorianError``)."""
        raise HistorianError(f"the {type(self).__name__} historian cannot rename tags")

    @abstractmethod
    def tags(self) -> pa.Table:
        """All known tags: ``tag_id``, ``path``, ``unit``, ``type``."""

    @abstractmethod
    def write(self, batch: pa.RecordBatch, seq: int | None = None) -> None:
        """Accept a batch (``plantlink.samples`` schema). May buffer; the latest-value cache updates at once.

        ``seq`` is the batch's write-ahead-log sequence number (increasing from one write to the next): the
        store records, in the same transaction as the rows, the highest one it made durable (``durable_seq``).
        """

    @abstractmethod
    def flush(self) -> int:
        """Make every accepted sample durable; return how many rows were written by this call."""

    def has_room(self) -> bool:
        """False when the backend's write buffer is at its bound: call ``wait_for_room`` (in a worker thread)
        before the next ``write`` (back-pressure: the runtime's writer leaves batches on the bus meanwhile)."""
        return True

    def wait_for_room(self) -> None:  # noqa: B027 - optional hook
        """Block until ``has_room`` (a backend without a bounded buffer returns at once)."""

    @property
    @abstractmethod
    def durable_seq(self) -> int:
        """The highest write-ahead-log sequence number whose batch (and every earlier one) is durable in the
        store, 0 when none is: a log replays only what comes after it, so nothing is stored twice."""

    @property
    @abstractmethod
    def samples_stored(self) -> int:
        """Samples made durable since open."""

    @property
    def refused(self) -> dict[str, int]:
        """Samples refused or flagged since open, per reason (``plantlink.historian.screen``: ``unknown_tag``,
        ``before_1970``, ``far_future``, ``non_finite``, and ``duplicate`` for a (tag, time) written again)."""
        return {}

    @abstractmethod
    def latest(self, tag_ids: Sequence[int]) -> pa.Table:
        """Last known ``ts``, ``value``, ``quality`` per tag (one row per known tag id, in the order asked)."""

    @abstractmethod
    def raw(self, tag_id: int, start_us: int, end_us: int, limit: int = 100_000) -> pa.Table:
        """Samples of one tag with ``start_us <= ts < end_us``, in time order, at most ``limit`` rows."""

    def last_before(self, tag_id: int, before_us: int) -> pa.Table:
        """The last sample of one tag with ``ts < before_us``, however old, of any quality (``ts``, ``value``,
        ``quality``; no row when there is none): the value holding at ``before_us``. A backend answers it in
        one query where it can; this default searches back with :meth:`raw` in windows doubling from an hour
        (at most to 1970)."""
        width, hi = 3600 * 1_000_000, before_us
        while hi > 0:
            lo = max(hi - width, 0)
            t = self.raw(tag_id, lo, hi, 2**62)
            if t.num_rows:
                return t.slice(t.num_rows - 1)
            hi, width = lo, width * 2
        return self.raw(tag_id, before_us, before_us + 1, 0)

    def raw_many(self, tag_ids: Sequence[int], start_us: int, end_us: int, limit: int = 100_000) -> pa.Table:
        """Samples of several numeric tags (``RAW_MANY_SCHEMA``) with ``start_us <= ts < end_us``, by tag id then
        time, at most ``limit`` rows per tag. A backend answers it in one query where it can; this default asks
        :meth:`raw` tag by tag."""
        parts = []
        for tid in sorted({int(t) for t in tag_ids}):
            t = self.raw(tid, start_us, end_us, limit)
            if not pa.types.is_floating(t.schema.field("value").type):
                raise QueryError(f"tag id {tid} holds text: read it with raw", field="tag_ids")
            ids = pa.array(np.full(t.num_rows, tid, dtype=np.uint32))
            parts.append(pa.table([ids, t.column("ts"), t.column("value"), t.column("quality")],
                                  schema=RAW_MANY_SCHEMA))
        return pa.concat_tables(parts) if parts else RAW_MANY_SCHEMA.empty_table()

    @abstractmethod
    def aggregate(
        self,
        tag_ids: Sequence[int],
        start_us: int,
        end_us: int,
        interval_us: int,
        aggregates: Sequence[Aggregate] = AGGREGATES,
    ) -> pa.Table:
        """One row per tag and interval bucket (``tag_id``, ``bucket`` start, then one column per aggregate).

        ``twa`` is the time-weighted mean: each sample's value holds until the next sample (step
        interpolation), the bucket's first stretch uses the last value before the bucket when there is one.
        Buckets are aligned to multiples of ``interval_us`` since the epoch. Bad-quality samples are ignored.
        """

    def sql(self, query: str, *, limit: int, timeout_s: float) -> SqlAnswer:
        """Run one read-only ``SELECT`` over the views ``samples(tag, ts, ts_us, value, quality)``, ``texts``
        (the same, text samples) and ``tags(tag_id, path, unit, type)``: at most ``limit`` rows, stopped after
        ``timeout_s``. Anything but a single SELECT, and any file access, is refused (``QueryError``). A
        backend without SQL refuses it."""
        raise QueryError("this historian does not answer SQL", field="sql")

    @abstractmethod
    def downsample(self, tag_id: int, start_us: int, end_us: int, n_out: int = 1000) -> pa.Table:
        """At most about ``n_out`` points (``ts``, ``value``) that keep the shape of the series (MinMaxLTTB)."""

    @abstractmethod
    def apply_retention(self, now_us: int) -> int:
        """Delete data older than the retention allows; return rows deleted."""

    def build_rollups(self, now_us: int) -> int:
        """Build the coarse rollups of the periods that have ended by ``now_us`` (the runtime's maintenance
        calls it on a schedule); return the rows built. A backend without such rollups builds nothing."""
        return 0
