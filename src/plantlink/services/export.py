"""Exports of what the pages show (issue 10, item 11): a trend's raw samples, OEE and energy tables, downtime
lists and Paretos over a range, as Arrow record batches produced a slice at a time (the API encodes them as CSV,
Parquet or XLSX and streams them; memory stays bounded whatever the range).

Every export is planned first (``trend``, ``oee``, ``downtime``, ``pareto`` return an ``Export``): the caller's
rights are checked, the number of rows is known (a table) or estimated (a trend: the historian's sample count)
before any row is read, so that a page can say the size before the download starts (``estimate_bytes``).
Times are written twice: in the site's time (ISO 8601 with the site's offset, ``time``/``start``/``end``) and
in UTC (``*_utc``). ``record`` writes the audit record of an export (who, what, range, format, rows).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plantlink.errors import QueryError
from plantlink.identity import Caller
from plantlink.model.production import STATES
from plantlink.samples import Quality, now_us
from plantlink.services.history import MAX_RANGE_US, MAX_SERIES
from plantlink.services.plant import MAX_PAGE

if TYPE_CHECKING:
    from plantlink.services import Services
    from plantlink.services.energy import EnergyInputs, EnergyResult
    from plantlink.services.kpi import Figures, OeeReport
    from plantlink.store.records import DowntimeEvent

__all__ = ["CONFIRM_BYTES", "CONFIRM_ROWS", "FORMATS", "XLSX_MAX_ROWS", "Export", "check_format", "downtime",
           "energy", "estimate_bytes", "filename", "needs_confirm", "oee", "pareto", "record", "trend"]

#: The formats of each kind of export (a trend's ``arrow``: an Arrow IPC stream of ``TREND_TYPED_SCHEMA``).
FORMATS: dict[str, tuple[str, ...]] = {"trend": ("csv", "parquet", "arrow"), "oee": ("csv", "xlsx"),
                                       "downtime": ("csv", "xlsx"), "pareto": ("csv", "xlsx"),
                                       "energy": ("csv", "xlsx")}
#: The rows of an XLSX sheet, the header included (Excel's limit).
XLSX_MAX_ROWS = 1_048_576
#: A trend is read from the historian this long at a time, and at most ``PAGE`` samples a read; its samples
#: are counted a day at a time (a count over the whole range at once holds every sample: ~450 MB for 2 M).
SLICE_US = 6 * 3600 * 1_000_000
COUNT_US = 86400 * 1_000_000
PAGE = 50_000
OEE_BY = ("machine", "shift", "day")
ENERGY_BY = ("machine", "shift")
#: Above either, a page asks before it starts the download (and says the size).
CONFIRM_ROWS = 1_000_000
CONFIRM_BYTES = 50 * 1024 * 1024
#: Bytes a row takes in each format, about (an estimate shown before a download; Parquet compresses).
_ROW_BYTES = {"trend": {"csv": 100, "parquet": 12, "arrow": 60}, "oee": {"csv": 300, "xlsx": 150},
              "downtime": {"csv": 260, "xlsx": 130}, "pareto": {"csv": 80, "xlsx": 40},
              "energy": {"csv": 400, "xlsx": 200}}


@dataclass(frozen=True)
class Export:
    """One export, planned: ``rows`` (exact, or estimated when not ``exact``), ``batches()`` reads them."""

    kind: str
    site: str
    timezone: str
    scope: str  # what is exported (a scope path, or the tags' common prefix)
    start_us: int
    end_us: int
    rows: int
    exact: bool
    schema: pa.Schema
    batches: Callable[[], Iterator[pa.RecordBatch]] = field(repr=False)
    details: dict[str, Any] = field(default_factory=dict)
    #: The same rows with typed columns (times as timestamps), for binary formats (``arrow``); None: as ``batches``.
    typed: tuple[pa.Schema, Callable[[], Iterator[pa.RecordBatch]]] | None = field(default=None, repr=False)

    def stream(self, fmt: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema and the batches of the file in ``fmt``."""
        if fmt == "arrow" and self.typed is not None:
            return self.typed[0], self.typed[1]()
        return self.schema, self.batches()


def estimate_bytes(export: Export, fmt: str) -> int:
    """About how many bytes the file will take (``rows`` times a typical row, plus a header)."""
    check_format(export.kind, fmt)
    return 1024 + export.rows * _ROW_BYTES[export.kind][fmt]


def needs_confirm(export: Export, fmt: str) -> bool:
    """Whether the export is large enough that a page asks before downloading it."""
    return export.rows > CONFIRM_ROWS or estimate_bytes(export, fmt) > CONFIRM_BYTES


def filename(export: Export, fmt: str) -> str:
    """``plantlink-<kind>-<scope>-<start>-<end>.<fmt>``, times in the site's time (``20260310T060000-0400``)."""
    zone = ZoneInfo(export.timezone)

    def at(us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, zone).strftime("%Y%m%dT%H%M%S%z")

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", export.scope.replace("/", "_")).strip("_")[:120] or export.site
    ext = {"arrow": "arrows"}.get(fmt, fmt)  # an Arrow IPC stream's registered extension
    return f"plantlink-{export.kind}-{slug}-{at(export.start_us)}-{at(export.end_us)}.{ext}"


def check_format(kind: str, fmt: str, rows: int | None = None) -> None:
    """``QueryError`` naming ``format`` for a format this export does not offer, or an XLSX too long for a sheet."""
    if fmt not in FORMATS[kind]:
        raise QueryError(f"format must be one of {list(FORMATS[kind])} for a {kind} export, got {fmt!r}",
                         field="format")
    if fmt == "xlsx" and rows is not None and rows + 1 > XLSX_MAX_ROWS:
        raise QueryError(f"{rows} rows do not fit in an XLSX sheet (at most {XLSX_MAX_ROWS - 1} rows): "
                         "export as CSV instead", field="format")


def record(svc: Services, who: Caller, export: Export, fmt: str, rows: int, complete: bool) -> None:
    """The audit record of an export (kind ``export.<kind>``)."""
    details = {"format": fmt, "rows": rows, "complete": complete, "start_us": export.start_us,
               "end_us": export.end_us, **export.details}
    svc.audit.record(f"export.{export.kind}", who.name, export.site, export.scope, details)


# -- times ---------------------------------------------------------------------------------------------------
def local_iso(us: pa.Array | np.ndarray, tz: str) -> pa.Array:
    """Epoch microseconds as ISO 8601 in ``tz`` with its offset (``2026-03-10T06:00:00.000000-04:00``)."""
    ts = pa.array(np.asarray(us, np.int64)).cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz=tz))
    text = pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S%z")
    return pc.replace_substring_regex(text, pattern=r"([+-]\d\d)(\d\d)$", replacement=r"\1:\2")


def utc_iso(us: pa.Array | np.ndarray) -> pa.Array:
    """Epoch microseconds as ISO 8601 UTC (``2026-03-10T10:00:00.000000Z``)."""
    ts = pa.array(np.asarray(us, np.int64)).cast(pa.timestamp("us", tz="UTC"))
    return pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ")


def _times(prefix: str, us: Sequence[int | None], tz: str) -> dict[str, pa.Array]:
    """``prefix`` (site time) and ``prefix_utc`` columns; a missing instant (an open event) stays null."""
    mask = np.array([u is None for u in us], dtype=bool)
    vals = np.array([0 if u is None else u for u in us], dtype=np.int64)
    local, utc = local_iso(vals, tz), utc_iso(vals)
    if mask.any():
        nulls = pa.nulls(len(us), pa.string())
        local, utc = pc.if_else(pa.array(mask), nulls, local), pc.if_else(pa.array(mask), nulls, utc)
    return {prefix: local, f"{prefix}_utc": utc}


# -- trend -----------------------------------------------------------------------------------------------------
TREND_SCHEMA = pa.schema([("tag", pa.string()), ("time", pa.string()), ("time_utc", pa.string()),
                          ("value", pa.float64()), ("quality", pa.string())])
#: A trend in a binary format: the instant as a timestamp (UTC, to the microsecond), no text times.
TREND_TYPED_SCHEMA = pa.schema([("tag", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
                                ("value", pa.float64()), ("quality", pa.string())])
_QUALITY_NAMES = pa.array(["bad", "uncertain", "good"], pa.string())


def trend(svc: Services, who: Caller, refs: Sequence[str | int], start_us: int, end_us: int) -> Export:
    """Raw samples of numeric tags of one site in ``[start, end)``: one row per sample, tag after tag, in time
    order. ``rows`` is the historian's sample count (good and uncertain samples; bad ones come on top)."""
    if not refs or len(refs) > MAX_SERIES:
        raise QueryError(f"give 1 to {MAX_SERIES} tags, got {len(refs)}", field="tags")
    count = svc.history.aggregate(who, refs, start_us, end_us, COUNT_US, ["count"])
    tags = count.tags
    sites = {t.info.site for t in tags}
    if len(sites) > 1:
        raise QueryError(f"the tags are of several sites ({', '.join(sorted(sites))}): export one site at a time",
                         field="tags")
    text = [t.info.path for t in tags if t.info.tag.type == "string"]
    if text:
        raise QueryError(f"{text[0]} is a text tag: a trend exports numeric tags", field="tags")
    site = tags[0].info.site
    tz = svc.plant.sites[site].timezone
    rows = int(pc.sum(count.table.column("count")).as_py() or 0)
    paths = [t.info.path for t in tags]

    def batches() -> Iterator[pa.RecordBatch]:
        for t in tags:
            for table in _tag_tables(svc, who, t.id, start_us, end_us):
                yield _trend_batch(table, t.info.path, tz)

    def typed() -> Iterator[pa.RecordBatch]:
        for t in tags:
            for table in _tag_tables(svc, who, t.id, start_us, end_us):
                yield typed_batch(table, t.info.path)

    scope = paths[0] if len(paths) == 1 else _common(paths)
    return Export("trend", site, tz, scope, start_us, end_us, rows, False, TREND_SCHEMA, batches, {"tags": paths},
                  (TREND_TYPED_SCHEMA.with_metadata({"site_timezone": tz}), typed))


def _tag_tables(svc: Services, who: Caller, tag_id: int, start_us: int, end_us: int) -> Iterator[pa.Table]:
    """The tag's raw samples in time order, a slice (or a page) at a time."""
    lo = start_us
    while lo < end_us:
        hi = min(lo + SLICE_US, end_us)
        found = svc.history.raw(who, tag_id, lo, hi, PAGE)
        table, lo = found.table, hi
        if found.more:  # a full page: the samples at its last instant are read again with the next one
            ts = table.column("ts").cast(pa.int64()).to_numpy()
            cut = int(np.searchsorted(ts, ts[-1]))
            table, lo = (table.slice(0, cut), int(ts[-1])) if cut else (table, int(ts[-1]) + 1)
        if table.num_rows:
            yield table


def _trend_batch(t: pa.Table, path: str, tz: str) -> pa.RecordBatch:
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    q = t.column("quality").to_numpy(zero_copy_only=False)
    quality = np.where(q >= Quality.GOOD, "good", np.where(q >= Quality.UNCERTAIN, "uncertain", "bad"))
    return pa.record_batch([pa.array([path] * len(ts), pa.string()), local_iso(ts, tz), utc_iso(ts),
                            t.column("value").cast(pa.float64()).combine_chunks(), pa.array(quality, pa.string())],
                           schema=TREND_SCHEMA)


def typed_batch(t: pa.Table, path: str) -> pa.RecordBatch:
    """A historian ``raw`` answer of tag ``path`` in ``TREND_TYPED_SCHEMA``, its quality named as the API names
    it (``good`` >= 192, ``uncertain`` >= 64, else ``bad``); columns built without a Python object per row."""
    n = t.num_rows
    q = t.column("quality").to_numpy(zero_copy_only=False)
    code = np.where(q >= Quality.GOOD, 2, np.where(q >= Quality.UNCERTAIN, 1, 0)).astype(np.int8)
    tag = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([path], pa.string()))
    quality = pa.DictionaryArray.from_arrays(pa.array(code), _QUALITY_NAMES)
    ts = t.column("ts").combine_chunks().cast(pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.record_batch([tag.cast(pa.string()), ts, t.column("value").cast(pa.float64()).combine_chunks(),
                            quality.cast(pa.string())], schema=TREND_TYPED_SCHEMA)


def _common(paths: Sequence[str]) -> str:
    parts = [p.split("/") for p in paths]
    same = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        same.append(level[0])
    return "/".join(same)


# -- OEE ---------------------------------------------------------------------------------------------------------
def oee(svc: Services, who: Caller, scope: str, start_us: int, end_us: int, by: str = "machine") -> Export:
    """OEE of ``scope`` over the range: ``by`` machine (each machine of the scope, then the scope, as the line
    page's table) or by ``shift`` / ``day`` of the site's calendar (as the OEE-over-time page)."""
    if by not in OEE_BY:
        raise QueryError(f"by must be one of {list(OEE_BY)}, got {by!r}", field="by")
    scope = scope.strip("/")
    site = scope.split("/", 1)[0]
    svc.plant.site(who, site)
    tz = svc.plant.sites[site].timezone
    if by == "machine":
        rep = svc.kpi.oee(who, scope, start_us, end_us)
        named = [(mp.rsplit("/", 1)[-1], mp, "", "", rep.start_us, rep.end_us, f) for mp, f in rep.machines]
        named.append((scope.rsplit("/", 1)[-1], scope, "", "", rep.start_us, rep.end_us, rep.total))
    else:
        named = [(_span_name(r, by, tz), scope, r.shift or "", r.day or _span_name(r, by, tz), r.start_us, r.end_us,
                  r.total) for r in _spans(svc, who, scope, start_us, end_us, by)]
    table = _oee_table(named, tz)
    return Export("oee", site, tz, scope, start_us, end_us, table.num_rows, True,
                  table.schema, lambda: iter(table.to_batches()), {"by": by})


def _spans(svc: Services, who: Caller, scope: str, start_us: int, end_us: int, by: str) -> list[OeeReport]:
    site, now = scope.split("/", 1)[0], now_us()
    if by == "shift":
        spans = [(s.start_us, s.end_us, {"shift": s.name, "day": s.day.isoformat()})
                 for s in svc.plant.planned[site].shifts(start_us, end_us) if s.start_us < now]
    else:
        stop, day, spans = min(end_us, now), svc.periods.midnight(site, start_us), []
        while day < stop:
            nxt = svc.periods.midnight(site, day + 36 * 3600 * 1_000_000)
            spans.append((max(day, start_us), min(nxt, stop), {}))
            day = nxt
    return svc.kpi.oee_spans(who, scope, start_us, end_us, spans, now=now)[1]


def _span_name(r: OeeReport, by: str, tz: str) -> str:
    """A shift as "2026-03-10 A", a day as its local date."""
    return f"{r.day} {r.shift}" if by == "shift" else str(local_iso(np.array([r.start_us]), tz)[0])[:10]


def _oee_table(named: list[tuple[str, str, str, str, int, int, Figures]], tz: str) -> pa.Table:
    cols: dict[str, Any] = {key: pa.array([n[i] for n in named], pa.string())
                            for i, key in enumerate(("name", "scope", "shift", "day"))}
    cols |= _times("start", [n[4] for n in named], tz) | _times("end", [n[5] for n in named], tz)
    figs = [n[6] for n in named]
    for key in ("availability", "effectiveness", "quality_rate", "oee"):
        cols[key] = pa.array([getattr(f.result, key) for f in figs], pa.float64())
    for key, attr in (("produced", "pq"), ("good", "gq"), ("scrap", "sq"), ("in_data_gaps", "gap_pq")):
        cols[key] = pa.array([getattr(f.inputs, attr) for f in figs], pa.float64())
    for key in ("availability_loss_s", "performance_loss_s", "quality_loss_s"):
        cols[key] = pa.array([getattr(f.result, key) for f in figs], pa.float64())
    cols["data_problem"] = pa.array([bool(f.result.data_problem) for f in figs], pa.bool_())
    return pa.table(cols)


# -- downtime ----------------------------------------------------------------------------------------------------
def downtime(svc: Services, who: Caller, start_us: int, end_us: int, *, site: str | None = None,
             line: str | None = None, machine: str | None = None) -> Export:
    """The downtime events of a site, line or machine overlapping the range, newest first (as the lists)."""
    if end_us <= start_us or end_us - start_us > MAX_RANGE_US:
        raise QueryError("the range must be positive and at most 400 days", field="end")
    filters: dict[str, Any] = {k: v for k, v in {"line": line, "machine": machine}.items() if v is not None}
    if site is None and not filters:
        raise QueryError("name a site, a line or a machine", field="site")
    first = svc.downtime.events(who, site=site, start_us=start_us, end_us=end_us, limit=1, **filters)
    where = machine or line or site or ""
    owner = where.strip("/").split("/", 1)[0]
    tz = svc.plant.sites[owner].timezone

    def batches() -> Iterator[pa.RecordBatch]:
        offset = 0
        while offset < first.total:
            page = svc.downtime.events(who, site=site, start_us=start_us, end_us=end_us, limit=MAX_PAGE,
                                       offset=offset, **filters)
            if not page.items:
                return
            yield from _events_table(page.items, tz).to_batches()
            offset += len(page.items)

    return Export("downtime", owner, tz, where.strip("/"), start_us, end_us, first.total, True,
                  EVENTS_SCHEMA, batches)


EVENTS_SCHEMA = pa.schema(
    [("id", pa.int64()), ("machine", pa.string()), ("state", pa.string()), ("micro", pa.bool_()),
     ("shift", pa.string()), ("start", pa.string()), ("start_utc", pa.string()), ("end", pa.string()),
     ("end_utc", pa.string()), ("duration_s", pa.float64()), ("reason_group", pa.string()), ("reason", pa.string()),
     ("reason_by", pa.string()), ("comment", pa.string())])


def _events_table(events: Sequence[DowntimeEvent], tz: str) -> pa.Table:
    cols: dict[str, Any] = {"id": pa.array([e.id for e in events], pa.int64()),
                            "machine": pa.array([e.machine for e in events], pa.string()),
                            "state": pa.array([e.state for e in events], pa.string()),
                            "micro": pa.array([e.micro for e in events], pa.bool_()),
                            "shift": pa.array([e.shift for e in events], pa.string())}
    cols |= _times("start", [e.start_us for e in events], tz) | _times("end", [e.end_us for e in events], tz)
    cols["duration_s"] = pa.array([e.duration_s for e in events], pa.float64())
    for key in ("reason_group", "reason", "reason_by", "comment"):
        cols[key] = pa.array([getattr(e, key) for e in events], pa.string())
    return pa.table(cols, schema=EVENTS_SCHEMA)


# -- Pareto ------------------------------------------------------------------------------------------------------
def pareto(svc: Services, who: Caller, by: str, start_us: int, end_us: int, *, line: str | None = None,
           site: str | None = None) -> Export:
    """The Pareto of lost time by reason, machine or shift (one row per bar, largest first)."""
    p = svc.downtime.pareto(who, by, start_us, end_us, line=line, site=site)
    where = (line or site or "").strip("/")
    owner = where.split("/", 1)[0]
    rows = p.rows
    table = pa.table({"key": pa.array([r.key for r in rows], pa.string()),
                      "group": pa.array([r.group for r in rows], pa.string()),
                      "count": pa.array([r.count for r in rows], pa.int64()),
                      "duration_s": pa.array([r.duration_s for r in rows], pa.float64()),
                      "share": pa.array([r.share for r in rows], pa.float64()),
                      "cumulative": pa.array([r.cumulative for r in rows], pa.float64()),
                      "micro_count": pa.array([r.micro.count for r in rows], pa.int64()),
                      "micro_duration_s": pa.array([r.micro.duration_s for r in rows], pa.float64())})
    return Export("pareto", owner, svc.plant.sites[owner].timezone, where, start_us, end_us, table.num_rows, True,
                  table.schema, lambda: iter(table.to_batches()), {"by": by})


# -- energy ------------------------------------------------------------------------------------------------------
#: name, scope, shift, day, start, end, inputs and result (None: nothing with an energy tag), currency
_EnergyRow = tuple[str, str, str, str, int, int, "EnergyInputs | None", "EnergyResult | None", str | None]
ENERGY_FIGURES = ("total_kwh", "running_kwh", "idle_kwh", "idle_share", "kwh_per_good_part",
                  "running_kwh_per_good_part", "cost", "idle_cost")


def energy(svc: Services, who: Caller, scope: str, start_us: int, end_us: int, by: str = "machine") -> Export:
    """Energy of ``scope`` over the range (``services.energy``, docs/energy.md): ``by`` machine (each machine with
    an energy tag, then the scope, as the line page's panel) or by ``shift`` (the scope in each shift of the
    site's calendar). kWh by state (``kwh_<state>``), kWh per good part, idle kWh and their cost."""
    if by not in ENERGY_BY:
        raise QueryError(f"by must be one of {list(ENERGY_BY)}, got {by!r}", field="by")
    scope = scope.strip("/")
    site = scope.split("/", 1)[0]
    svc.plant.site(who, site)
    tz = svc.plant.sites[site].timezone
    total, shifts = svc.energy.energy(who, scope, start_us, end_us, by_shift=by == "shift")
    named: list[_EnergyRow]
    if by == "machine":
        named = [(m.machine.rsplit("/", 1)[-1], m.machine, "", "", total.start_us, total.end_us, m.inputs, m.result,
                  m.currency) for m in total.machines]
        named.append((scope.rsplit("/", 1)[-1], scope, "", "", total.start_us, total.end_us, total.total,
                      total.result, total.currency))
    else:
        named = [(f"{r.day} {r.shift}", scope, r.shift or "", r.day or "", r.start_us, r.end_us, r.total, r.result,
                  r.currency) for r in shifts]
    table = _energy_table(named, tz)
    return Export("energy", site, tz, scope, start_us, end_us, table.num_rows, True,
                  table.schema, lambda: iter(table.to_batches()), {"by": by})


def _energy_table(named: list[_EnergyRow], tz: str) -> pa.Table:
    cols: dict[str, Any] = {key: pa.array([n[i] for n in named], pa.string())
                            for i, key in enumerate(("name", "scope", "shift", "day"))}
    cols |= _times("start", [n[4] for n in named], tz) | _times("end", [n[5] for n in named], tz)
    results, inputs = [n[7] for n in named], [n[6] for n in named]
    for key in ENERGY_FIGURES:
        cols[key] = pa.array([None if r is None else getattr(r, key) for r in results], pa.float64())
    cols["currency"] = pa.array([n[8] for n in named], pa.string())
    cols["good_parts"] = pa.array([None if i is None else i.good for i in inputs], pa.float64())
    for key, attr in (("unattributed_kwh", "gap_kwh"), ("unknown_state_kwh", "unknown_state_kwh"),
                      ("measured_s", "measured_s"), ("unmeasured_s", "unmeasured_s")):
        cols[key] = pa.array([None if i is None else getattr(i, attr) for i in inputs], pa.float64())
    for state in STATES:
        cols[f"kwh_{state}"] = pa.array([None if i is None else i.by_state.get(state, 0.0) for i in inputs],
                                        pa.float64())
    return pa.table(cols)
