"""The service layer of the API: plain functions over a running ``Runtime``, called by the REST routes and
by the HMI (server-side Python). No web framework types; errors are ``QueryError`` (bad argument, 400),
``NotFoundError`` (404) and ``AccessDenied`` (403), each naming the argument at fault.

Every function takes the caller (``who``: a ``plantlink.identity.Principal``) and shows only the sites
it may view. Times are integer epoch microseconds in, ``{"ts": ISO UTC, "ts_ms": epoch ms}`` out.
Historian and store calls block: from async code call these functions in a worker thread.

OEE, costs, bottleneck and the overview are in :mod:`plantlink.api.kpi` and re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from plantlink.api.kpi import (
    bottleneck,
    line_costs,
    oee,
    oee_by_shift,
    oee_period,
    overview,
    period_bounds,
)
from plantlink.api.scope import (
    DEFAULT_PAGE,
    MAX_PAGE,
    AccessDenied,
    Caller,
    NotFoundError,
    Role,
    check_page,
    check_range,
    index,
    page,
)
from plantlink.api.timefmt import iso_many, ms_many, stamp
from plantlink.errors import PlantlinkError, QueryError
from plantlink.historian.base import AGGREGATES, Historian
from plantlink.samples import Quality, now_us, value_reasons
from plantlink.store import PARETO_BY, NotFound

if TYPE_CHECKING:
    from plantlink.model.plant import TagInfo
    from plantlink.runtime import Runtime
    from plantlink.store import Store

__all__ = [
    "AccessDenied", "NotFoundError", "aggregate_history", "assign_reason", "bottleneck", "downsample_history",
    "downtime_events", "hierarchy", "latest", "line_costs", "oee", "oee_by_shift", "oee_period", "overview",
    "pareto", "period_bounds", "raw_history", "reasons", "state_timeline", "states_now", "tag", "tags",
]

MAX_RAW_POINTS = 1_000_000
MAX_RAW_RANGE_US = 31 * 86400 * 1_000_000
MAX_BUCKETS = 100_000
MAX_DOWNSAMPLE = 10_000
MAX_LATEST = 1000
MAX_SERIES = 100
_DAY_US = 86400 * 1_000_000


def historian(rt: Runtime) -> Historian:
    if rt.historian is None:
        raise PlantlinkError("the historian is not open")
    return rt.historian


def store(rt: Runtime) -> Store:
    if rt.store is None:
        raise PlantlinkError("the relational store is not open")
    return rt.store


# -- hierarchy and tags ----------------------------------------------------------------------------------
def _tag_dict(tid: int, t: TagInfo) -> dict[str, Any]:
    return {"id": tid, "path": t.path, "name": t.tag.name, "unit": t.tag.unit, "type": t.tag.type,
            "description": t.tag.description, "writable": t.tag.writable, "machine": t.path.rsplit("/", 1)[0],
            "device": t.device, "protocol": t.protocol}


def hierarchy(rt: Runtime, who: Caller, *, with_tags: bool = True) -> dict[str, Any]:
    """Enterprise -> sites -> areas -> lines -> machines (-> tags), only the sites ``who`` may view."""
    idx = index(rt)
    sites = []
    for name in idx.visible_sites(who):
        s = idx.sites[name]
        areas = []
        for a in s.areas:
            lines = []
            for ln in a.lines:
                lpath = f"{s.name}/{a.name}/{ln.name}"
                machines = []
                for mpath in idx.lines[lpath].machines:
                    m = idx.machines[mpath]
                    item: dict[str, Any] = {"name": m.name, "path": mpath, "kind": m.model.kind,
                                            "description": m.model.description,
                                            "has_states": m.model.states is not None,
                                            "has_production": m.model.production is not None}
                    if with_tags:
                        item["tags"] = [_tag_dict(int(i), idx.tags[idx.path_of[int(i)]]) for i in m.tag_ids]
                    machines.append(item)
                lines.append({"name": ln.name, "path": lpath, "description": ln.description, "machines": machines})
            areas.append({"name": a.name, "path": f"{s.name}/{a.name}", "lines": lines})
        sites.append({"name": s.name, "description": s.description, "timezone": s.timezone, "areas": areas})
    return {"enterprise": idx.enterprise, "sites": sites}


def tag(rt: Runtime, who: Caller, ref: str | int) -> dict[str, Any]:
    """One tag by path or id."""
    tid, info = index(rt).tag(who, ref)
    return _tag_dict(tid, info)


def tags(rt: Runtime, who: Caller, *, prefix: str | None = None, limit: int = DEFAULT_PAGE,
         offset: int = 0) -> dict[str, Any]:
    """A page of the tags the caller may view, in model order, optionally under a path ``prefix``."""
    check_page(limit, offset)
    idx = index(rt)
    allowed = set(idx.visible_sites(who))
    pre = prefix.strip("/") + "/" if prefix else ""
    if pre and pre.split("/", 1)[0] in idx.sites:
        idx.require(who, pre.split("/", 1)[0])
    found = [p for p, t in idx.tags.items() if t.site in allowed and (not pre or p.startswith(pre))]
    items = [_tag_dict(idx.ids[p], idx.tags[p]) for p in found[offset:offset + limit]]
    return page(list(items), len(found), limit, offset)


# -- latest values ---------------------------------------------------------------------------------------
def latest(rt: Runtime, who: Caller, refs: list[str | int]) -> list[dict[str, Any]]:
    """The last known sample of each tag: ``value`` (numbers) or ``text``, unit, quality name, time."""
    if not refs:
        raise QueryError("name at least one tag", field="tags")
    if len(refs) > MAX_LATEST:
        raise QueryError(f"at most {MAX_LATEST} tags per request, got {len(refs)}", field="tags")
    idx = index(rt)
    found = [idx.tag(who, r, field="tags") for r in refs]
    table = historian(rt).latest([tid for tid, _ in found])
    return rows_of_latest(table, [info for _, info in found])


def rows_of_latest(table: pa.Table, infos: list[TagInfo]) -> list[dict[str, Any]]:
    """One JSON-ready row per tag. A number that cannot be shown (NaN, an infinity, no value) is ``value:
    null`` with a ``reason``: ``nan``, ``+inf``, ``-inf`` or ``null``."""
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    vals = _floats(table.column("value"))
    reasons = value_reasons(table.column("value"))
    why = reasons.tolist() if reasons is not None else [None] * len(ts)
    texts = table.column("text").to_pylist() if "text" in table.column_names else [None] * len(ts)
    qual = table.column("quality").to_pylist()
    out = []
    for i, info in enumerate(infos):
        row: dict[str, Any] = {"tag": info.path, "id": table.column("tag_id")[i].as_py(), "unit": info.tag.unit}
        if texts[i] is not None:
            row["text"] = texts[i]
        else:
            row["value"] = vals[i]
            if why[i] is not None and ts[i] is not None:
                row["reason"] = why[i]
        row["quality"] = None if qual[i] is None else Quality.name_of(qual[i])
        row.update(stamp(ts[i]))
        out.append(row)
    return out


# -- history ---------------------------------------------------------------------------------------------
def raw_history(rt: Runtime, who: Caller, ref: str | int, start_us: int, end_us: int,
                limit: int = 10_000) -> dict[str, Any]:
    """Raw samples in ``[start, end)``, columnar. When ``limit`` cut the answer, ``next_start`` gives where to
    continue (the next page starts there)."""
    check_range(start_us, end_us, MAX_RAW_RANGE_US, "raw range")
    if not 1 <= limit <= MAX_RAW_POINTS:
        raise QueryError(f"limit must be between 1 and {MAX_RAW_POINTS} points, got {limit}; "
                         "ask for a downsampled or aggregated series instead", field="limit")
    tid, info = index(rt).tag(who, ref)
    t = historian(rt).raw(tid, start_us, end_us, limit + 1)
    more = t.num_rows > limit
    t = t.slice(0, limit)
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    q = t.column("quality").to_numpy(zero_copy_only=False)
    out: dict[str, Any] = {"tag": info.path, "id": tid, "unit": info.tag.unit, "count": t.num_rows,
                           "ts": iso_many(ts), "ts_ms": ms_many(ts)}
    if pa.types.is_string(t.column("value").type):
        out["text"] = t.column("value").to_pylist()
    else:
        out["value"] = _floats(t.column("value"))
        why = value_reasons(t.column("value"))
        if why is not None:
            out["reason"] = why.tolist()
    out["quality"] = np.where(q >= Quality.GOOD, "good", np.where(q >= Quality.UNCERTAIN, "uncertain", "bad")).tolist()
    out["next_start"] = stamp(int(ts[-1]) + 1) if more and ts.size else None
    return out


def _floats(col: pa.ChunkedArray | pa.Array) -> list[float | None]:
    arr = col.to_numpy(zero_copy_only=False).astype(np.float64)
    vals: list[float | None] = arr.tolist()
    bad = np.flatnonzero(~np.isfinite(arr))
    for i in bad.tolist():
        vals[i] = None
    return vals


def aggregate_history(rt: Runtime, who: Caller, refs: list[str | int], start_us: int, end_us: int,
                      interval_us: int, aggregates: list[str] | None = None) -> dict[str, Any]:
    """Per tag, one row per ``interval`` bucket with the chosen aggregates (default: all)."""
    check_range(start_us, end_us, 400 * _DAY_US)
    if not refs or len(refs) > MAX_SERIES:
        raise QueryError(f"give 1 to {MAX_SERIES} tags, got {len(refs)}", field="tags")
    if interval_us <= 0:
        raise QueryError("interval must be positive", field="interval")
    buckets = -(-(end_us - start_us) // interval_us) * len(refs)
    if buckets > MAX_BUCKETS:
        raise QueryError(f"{buckets} buckets asked for, at most {MAX_BUCKETS}: widen the interval or shorten "
                         "the range", field="interval")
    aggs = list(aggregates or AGGREGATES)
    bad = [a for a in aggs if a not in AGGREGATES]
    if bad:
        raise QueryError(f"unknown aggregates {bad}; choose from {list(AGGREGATES)}", field="aggregates")
    idx = index(rt)
    found = [idx.tag(who, r, field="tags") for r in refs]
    table = historian(rt).aggregate([tid for tid, _ in found], start_us, end_us, interval_us, aggs)  # type: ignore[arg-type]
    tag_col = table.column("tag_id").to_numpy(zero_copy_only=False)
    bucket = table.column("bucket").cast(pa.int64()).to_numpy(zero_copy_only=False) if table.num_rows else \
        np.zeros(0, np.int64)
    series = []
    for tid, info in found:
        rows = np.flatnonzero(tag_col == tid)
        item: dict[str, Any] = {"tag": info.path, "id": tid, "unit": info.tag.unit,
                                "bucket": iso_many(bucket[rows]), "bucket_ms": ms_many(bucket[rows])}
        for a in aggs:
            item[a] = _floats(table.column(a).take(pa.array(rows)))
        series.append(item)
    return {"interval_ms": interval_us // 1000, "aggregates": aggs, "series": series}


def downsample_history(rt: Runtime, who: Caller, ref: str | int, start_us: int, end_us: int,
                       n: int = 1000) -> dict[str, Any]:
    """About ``n`` points that keep the shape of the series (the historian's MinMaxLTTB), for trends."""
    check_range(start_us, end_us, 400 * _DAY_US)
    if not 5 <= n <= MAX_DOWNSAMPLE:
        raise QueryError(f"n must be between 5 and {MAX_DOWNSAMPLE}, got {n}", field="n")
    tid, info = index(rt).tag(who, ref)
    t = historian(rt).downsample(tid, start_us, end_us, n)
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    return {"tag": info.path, "id": tid, "unit": info.tag.unit, "count": t.num_rows,
            "ts": iso_many(ts), "ts_ms": ms_many(ts), "value": _floats(t.column("value"))}


# -- machine states --------------------------------------------------------------------------------------
def states_now(rt: Runtime, who: Caller, *, site: str | None = None, line: str | None = None) -> list[dict[str, Any]]:
    """Each visible machine's current state and since when."""
    idx = index(rt)
    if site is not None:
        idx.site(who, site)
    if line is not None:
        idx.line(who, line)
    current = rt.states.current() if rt.states is not None else {}
    out = []
    for path, m in idx.machines.items():
        if path not in current or not who.can(m.site, "viewer"):
            continue
        if (site is not None and m.site != site) or (line is not None and m.line != line.strip("/")):
            continue
        state, since = current[path]
        out.append({"machine": path, "line": m.line, "site": m.site, "state": state, **stamp(since, "since")})
    return out


def state_timeline(rt: Runtime, who: Caller, machine: str, start_us: int, end_us: int, *,
                   limit: int = DEFAULT_PAGE, offset: int = 0) -> dict[str, Any]:
    """The machine's state intervals overlapping the range (clipped to it; the open one ends now)."""
    check_range(start_us, end_us, 400 * _DAY_US)
    check_page(limit, offset)
    m = index(rt).machine(who, machine)
    ivs = store(rt).intervals(start_us, end_us, machines=[m.path], open_until=now_us())
    items: list[object] = [
        {"state": iv.state, "shift": iv.shift, **stamp(iv.start_us, "start"), **stamp(iv.end_us, "end"),
         "duration_s": None if iv.end_us is None else (iv.end_us - iv.start_us) / 1e6, "end_reason": iv.end_reason}
        for iv in ivs[offset:offset + limit]
    ]
    return {"machine": m.path, **page(items, len(ivs), limit, offset)}


# -- downtime --------------------------------------------------------------------------------------------
def _event_dict(ev: Any) -> dict[str, Any]:
    d = ev.to_dict()
    d.update(stamp(d.pop("start_us"), "start"))
    d.update(stamp(d.pop("end_us"), "end"))
    d.update(stamp(d.pop("reason_at"), "reason_at"))
    return dict(d)


_EVENT_FILTERS = ("machine", "line", "state", "micro", "shift", "has_reason")


def downtime_events(rt: Runtime, who: Caller, *, site: str | None = None, start_us: int | None = None,
                    end_us: int | None = None, limit: int = DEFAULT_PAGE, offset: int = 0,
                    **filters: Any) -> dict[str, Any]:
    """A page of downtime events, newest first. Filters: machine, line, state, micro, shift, has_reason.
    Without ``site``/``line``/``machine`` the caller must be able to view every site, or exactly one."""
    check_page(limit, offset, MAX_PAGE)
    if start_us is not None and end_us is not None:
        check_range(start_us, end_us)
    unknown = set(filters) - set(_EVENT_FILTERS)
    if unknown:
        raise QueryError(f"unknown filter(s) {sorted(unknown)}", field=sorted(unknown)[0])
    idx = index(rt)
    query = {k: v for k, v in filters.items() if v is not None}
    if "machine" in query:
        query["machine"] = idx.machine(who, query["machine"]).path
    if "line" in query:
        query["line"] = idx.line(who, query["line"]).path
    if site is not None:
        idx.site(who, site)
        query["site"] = site
    elif "machine" not in query and "line" not in query:
        visible = idx.visible_sites(who)
        if len(visible) == 1:
            query["site"] = visible[0]
        elif len(visible) < len(idx.sites):
            raise QueryError("name a site (you may view several, not all)", field="site")
    p = store(rt).downtime(start_us=start_us, end_us=end_us, limit=limit, offset=offset, **query)
    return page([_event_dict(ev) for ev in p.items], p.total, p.limit, p.offset)


def _event(rt: Runtime, who: Caller, event_id: int, role: Role = "viewer") -> Any:
    try:
        ev = store(rt).event(event_id)
    except NotFound:
        raise NotFoundError(f"no downtime event with id {event_id}", field="event_id") from None
    if not who.can(ev.site, "viewer"):
        raise NotFoundError(f"no downtime event with id {event_id}", field="event_id")
    index(rt).require(who, ev.site, role)
    return ev


def downtime_event(rt: Runtime, who: Caller, event_id: int) -> dict[str, Any]:
    return _event_dict(_event(rt, who, event_id))


def assign_reason(rt: Runtime, who: Caller, event_id: int, reason: str | None, *, group: str | None = None,
                  comment: str | None = None) -> dict[str, Any]:
    """Give (or with None, clear) a downtime event's reason; operators and above, checked against the line's
    reason tree (``ReasonError`` lists the valid ones)."""
    _event(rt, who, event_id, role="operator")
    if rt.downtime is None:
        raise PlantlinkError("the downtime engine is not running")
    ev = rt.downtime.assign_reason(event_id, reason, by=who.name, group=group, comment=comment)
    return _event_dict(ev)


def reasons(rt: Runtime, who: Caller, line: str) -> dict[str, list[str]]:
    ref = index(rt).line(who, line)
    return {g.name: list(g.reasons) for g in ref.model.downtime.reasons}


def pareto(rt: Runtime, who: Caller, by: str, start_us: int, end_us: int, *, line: str | None = None,
           site: str | None = None) -> dict[str, Any]:
    """Lost time by reason, machine or shift in the range, on one line or site."""
    if by not in PARETO_BY:
        raise QueryError(f"by must be one of {list(PARETO_BY)}, got {by!r}", field="by")
    check_range(start_us, end_us, 400 * _DAY_US)
    idx = index(rt)
    if line is not None:
        line = idx.line(who, line).path
    elif site is not None:
        idx.site(who, site)
    else:
        raise QueryError("name a line or a site", field="line")
    p = store(rt).pareto(by, start_us, end_us, line=line, site=site)
    rows = [dict(r.__dict__, micro=dict(r.micro.__dict__)) for r in p.rows]
    return {"by": p.by, **stamp(p.start_us, "start"), **stamp(p.end_us, "end"), "rows": rows,
            "total": dict(p.total.__dict__), "micro": dict(p.micro.__dict__), "unknown": dict(p.unknown.__dict__)}
