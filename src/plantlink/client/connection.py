"""``Connection``: the calls of the Python API, the same whatever the mode. A mode is a ``Source`` that answers
what the REST API answers (its JSON, and the trend export's Arrow table): ``embedded.DataDirSource`` calls the
services in this process, ``remote.HttpSource`` asks a running server. Selection, checks and frames are here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import pyarrow as pa

from plantlink.client import frames
from plantlink.client.select import every_us, select, time_range
from plantlink.errors import QueryError

Time = datetime | str
#: Per request: tags of a trend or an aggregate (the services' MAX_SERIES), of latest values, and a page.
SERIES_CHUNK, LATEST_CHUNK, PAGE = 100, 1000, 1000
AGGREGATES = ("min", "max", "mean", "twa", "first", "last", "count")


class Source(Protocol):
    """What a mode answers: the REST API's JSON (``plantlink.api.queries``) and trend export tables."""

    where: str

    def tag_paths(self) -> list[str]: ...
    def trend(self, paths: Sequence[str], start_us: int, end_us: int) -> pa.Table: ...
    def aggregate(self, paths: Sequence[str], start_us: int, end_us: int, interval_us: int,
                  aggregates: Sequence[str]) -> dict[str, Any]: ...
    def latest(self, paths: Sequence[str]) -> list[dict[str, Any]]: ...
    def timeline(self, machine: str, start_us: int, end_us: int, limit: int, offset: int) -> dict[str, Any]: ...
    def oee(self, scope: str, start_us: int, end_us: int) -> dict[str, Any]: ...
    def energy(self, scope: str, start_us: int, end_us: int, by: str | None) -> dict[str, Any]: ...
    def downtime(self, where: dict[str, str], start_us: int, end_us: int, limit: int, offset: int
                 ) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


class Connection:
    """A plant's data, embedded (a data directory) or remote (a server): see ``plantlink.connect``."""

    def __init__(self, source: Source):
        self.source = source
        self._paths: list[str] | None = None

    def __repr__(self) -> str:
        return f"<plantlink connection to {self.source.where}>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.source.close()

    def tags(self, pattern: str | Sequence[str] = "*/*/*/*/*") -> list[str]:
        """The tag paths a path, a pattern or a list selects (default: every tag you may view)."""
        return select(pattern, self._known())

    def _known(self) -> list[str]:
        if self._paths is None:
            self._paths = self.source.tag_paths()
        return self._paths

    def read(self, tags: str | Sequence[str], start: Time, end: Time, every: str | timedelta | None = None,
             agg: str | Sequence[str] | None = None, *, format: str = "polars") -> Any:
        """Raw samples in ``[start, end)`` (``tag, ts, value, quality``), or with ``every`` one row per tag and
        bucket (``tag, ts`` = bucket start, then one column per aggregate of ``agg``, default ``mean``)."""
        frames.check_format(format)
        s, e = time_range(start, end)
        if every is None and agg is not None:
            raise QueryError("agg needs every (the bucket width, like '5m')", field="every")
        paths = select(tags, self._known())
        if every is None:
            return frames.output(self._raw(paths, s, e), format)
        aggs = [agg] if isinstance(agg, str) else list(agg or ["mean"])
        bad = [a for a in aggs if a not in AGGREGATES]
        if bad or not aggs:
            raise QueryError(f"unknown aggregate(s) {bad}; choose from {list(AGGREGATES)}", field="agg")
        interval = every_us(every)
        answers = [self.source.aggregate(c, s, e, interval, aggs) for c in _chunks(paths, SERIES_CHUNK)]
        return frames.output(frames.aggregated(answers, aggs), format)

    def _raw(self, paths: list[str], s: int, e: int) -> Any:
        by_site: dict[str, list[str]] = {}
        for p in paths:  # the trend export answers one site at a time
            by_site.setdefault(p.split("/", 1)[0], []).append(p)
        tables = [self.source.trend(c, s, e) for group in by_site.values() for c in _chunks(group, SERIES_CHUNK)]
        df = frames.raw(tables)
        order = {p: i for i, p in enumerate(paths)}  # the order asked, each tag in time order
        pl = frames.polars()
        return df.with_columns(pl.col("tag").replace_strict(order, return_dtype=pl.Int64).alias("_o")) \
            .sort("_o", "ts", maintain_order=True).drop("_o")

    def latest(self, tags: str | Sequence[str], *, format: str = "polars") -> Any:
        """The last known sample of each tag: ``tag, ts, value, quality, unit`` (``text`` for text tags)."""
        frames.check_format(format)
        paths = select(tags, self._known())
        rows = [r for c in _chunks(paths, LATEST_CHUNK) for r in self.source.latest(c)]
        return frames.output(frames.latest(rows), format)

    def states(self, machine: str, start: Time, end: Time, *, format: str = "polars") -> Any:
        """The machine's state intervals overlapping ``[start, end)``, clipped to it (the open one ends now):
        ``machine, state, start, end, duration_s, shift, end_reason``."""
        frames.check_format(format)
        s, e = time_range(start, end)
        items: list[dict[str, Any]] = []
        path = machine.strip("/")
        while True:
            page = self.source.timeline(path, s, e, PAGE, len(items))
            items += page["items"]
            path = page["machine"]
            if not page["items"] or len(items) >= page["total"]:
                return frames.output(frames.states(path, items), format)

    def oee(self, scope: str, start: Time, end: Time, *, format: str = "polars") -> Any:
        """OEE (ISO 22400-2) of a machine, line, area or site over ``[start, end)``: the scope's row first, then
        one row per machine (see ``frames.OEE_COLUMNS``)."""
        frames.check_format(format)
        s, e = time_range(start, end)
        return frames.output(frames.oee(self.source.oee(scope.strip("/"), s, e)), format)

    def energy(self, scope: str, start: Time, end: Time, by: str | None = None, *, format: str = "polars") -> Any:
        """Energy of a machine, line, area or site over ``[start, end)`` (docs/energy.md): the scope's row first,
        then one row per machine; ``by="shift"``: one row per shift of the site's calendar instead (see
        ``frames.ENERGY_COLUMNS``). A machine without an energy tag: ``NotFound``."""
        frames.check_format(format)
        if by not in (None, "shift"):
            raise QueryError(f"by must be 'shift' (or None), got {by!r}", field="by")
        s, e = time_range(start, end)
        return frames.output(frames.energy(self.source.energy(scope.strip("/"), s, e, by), by), format)

    def downtime(self, scope: str, start: Time, end: Time, *, format: str = "polars") -> Any:
        """Downtime events of a site, line or machine overlapping ``[start, end)``, newest first."""
        frames.check_format(format)
        s, e = time_range(start, end)
        where = _downtime_scope(scope)
        items: list[dict[str, Any]] = []
        while True:
            page = self.source.downtime(where, s, e, PAGE, len(items))
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return frames.output(frames.downtime(items), format)


def _downtime_scope(scope: str) -> dict[str, str]:
    path = scope.strip().strip("/")
    kind = {1: "site", 3: "line", 4: "machine"}.get(len(path.split("/")) if path else 0)
    if kind is None:
        raise QueryError(f"scope {scope!r}: give a site, a line (site/area/line) or a machine "
                         "(site/area/line/machine)", field="scope")
    return {kind: path}
