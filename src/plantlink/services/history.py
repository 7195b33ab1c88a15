"""Tag metadata, latest values and history: Arrow tables with the tag they belong to, checked and scoped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from plantlink.errors import QueryError, Unavailable
from plantlink.historian.base import AGGREGATES
from plantlink.identity import Caller
from plantlink.services.deps import SampleReader
from plantlink.services.latest import LatestValues
from plantlink.services.plant import DEFAULT_PAGE, PlantIndex, check_page, check_range

if TYPE_CHECKING:
    from plantlink.model.plant import TagInfo

MAX_RAW_POINTS = 1_000_000
MAX_RAW_RANGE_US = 31 * 86400 * 1_000_000
MAX_BUCKETS = 100_000
MAX_DOWNSAMPLE = 10_000
MAX_LATEST = 1000
MAX_SERIES = 100
DAY_US = 86400 * 1_000_000
MAX_RANGE_US = 400 * DAY_US


@dataclass(frozen=True)
class TagRef:
    id: int
    info: TagInfo


@dataclass(frozen=True)
class TagPage:
    items: tuple[TagRef, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Latest:
    """The latest sample of each tag asked for (``table``: the historian's ``latest`` columns, same order)."""

    tags: tuple[TagRef, ...]
    table: pa.Table


@dataclass(frozen=True)
class Series:
    """Samples of one tag (``ts`` int64 us, ``value``, ``quality`` or, downsampled, ``ts`` and ``value``);
    ``more`` when a limit cut the answer."""

    tag: TagRef
    table: pa.Table
    more: bool = False


@dataclass(frozen=True)
class Aggregates:
    """One row per tag and bucket (``tag_id``, ``bucket`` int64 us, then each aggregate)."""

    tags: tuple[TagRef, ...]
    interval_us: int
    aggregates: tuple[str, ...]
    table: pa.Table


class HistoryService:
    def __init__(self, index: PlantIndex, samples: Callable[[], SampleReader | None], latest: LatestValues):
        self.index, self._samples, self.live = index, samples, latest

    def _hist(self) -> SampleReader:
        h = self._samples()
        if h is None:
            raise Unavailable("the historian is not open")
        return h

    def _refs(self, who: Caller, refs: Sequence[str | int], field: str = "tags") -> tuple[TagRef, ...]:
        return tuple(TagRef(*self.index.tag(who, r, field=field)) for r in refs)

    # -- tags ---------------------------------------------------------------------------------------
    def tag(self, who: Caller, ref: str | int) -> TagRef:
        return TagRef(*self.index.tag(who, ref))

    def tags(self, who: Caller, *, prefix: str | None = None, limit: int = DEFAULT_PAGE, offset: int = 0
             ) -> TagPage:
        """A page of the tags the caller may view, in model order, optionally under a path ``prefix``."""
        check_page(limit, offset)
        idx = self.index
        allowed = set(idx.visible_sites(who))
        pre = prefix.strip("/") + "/" if prefix else ""
        if pre and pre.split("/", 1)[0] in idx.sites:
            idx.require(who, pre.split("/", 1)[0])
        found = [p for p, t in idx.tags.items() if t.site in allowed and (not pre or p.startswith(pre))]
        items = tuple(TagRef(idx.ids[p], idx.tags[p]) for p in found[offset:offset + limit])
        return TagPage(items, len(found), limit, offset)

    # -- values -------------------------------------------------------------------------------------
    def latest(self, who: Caller, refs: Sequence[str | int]) -> Latest:
        """The last known sample of each tag (from the bus-fed live values)."""
        if not refs:
            raise QueryError("name at least one tag", field="tags")
        if len(refs) > MAX_LATEST:
            raise QueryError(f"at most {MAX_LATEST} tags per request, got {len(refs)}", field="tags")
        found = self._refs(who, refs)
        return Latest(found, self.live.table([r.id for r in found]))

    def raw(self, who: Caller, ref: str | int, start_us: int, end_us: int, limit: int = 10_000) -> Series:
        """Raw samples in ``[start, end)``; ``more`` when ``limit`` cut the answer."""
        check_range(start_us, end_us, MAX_RAW_RANGE_US, "raw range")
        if not 1 <= limit <= MAX_RAW_POINTS:
            raise QueryError(f"limit must be between 1 and {MAX_RAW_POINTS} points, got {limit}; "
                             "ask for a downsampled or aggregated series instead", field="limit")
        tag = TagRef(*self.index.tag(who, ref))
        t = self._hist().raw(tag.id, start_us, end_us, limit + 1)
        return Series(tag, t.slice(0, limit), t.num_rows > limit)

    def aggregate(self, who: Caller, refs: Sequence[str | int], start_us: int, end_us: int, interval_us: int,
                  aggregates: Sequence[str] | None = None) -> Aggregates:
        """Per tag, one row per ``interval`` bucket with the chosen aggregates (default: all)."""
        check_range(start_us, end_us, MAX_RANGE_US)
        if not refs or len(refs) > MAX_SERIES:
            raise QueryError(f"give 1 to {MAX_SERIES} tags, got {len(refs)}", field="tags")
        if interval_us <= 0:
            raise QueryError("interval must be positive", field="interval")
        buckets = -(-(end_us - start_us) // interval_us) * len(refs)
        if buckets > MAX_BUCKETS:
            raise QueryError(f"{buckets} buckets asked for, at most {MAX_BUCKETS}: widen the interval or shorten "
                             "the range", field="interval")
        aggs = tuple(aggregates or AGGREGATES)
        bad = [a for a in aggs if a not in AGGREGATES]
        if bad:
            raise QueryError(f"unknown aggregates {bad}; choose from {list(AGGREGATES)}", field="aggregates")
        found = self._refs(who, refs)
        table = self._hist().aggregate([r.id for r in found], start_us, end_us, interval_us, aggs)
        return Aggregates(found, interval_us, aggs, table)

    def downsample(self, who: Caller, ref: str | int, start_us: int, end_us: int, n: int = 1000) -> Series:
        """About ``n`` points that keep the shape of the series (the historian's MinMaxLTTB), for trends."""
        check_range(start_us, end_us, MAX_RANGE_US)
        if not 5 <= n <= MAX_DOWNSAMPLE:
            raise QueryError(f"n must be between 5 and {MAX_DOWNSAMPLE}, got {n}", field="n")
        tag = TagRef(*self.index.tag(who, ref))
        return Series(tag, self._hist().downsample(tag.id, start_us, end_us, n))
