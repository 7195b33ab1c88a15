"""The API's encoders: each function calls the service layer (``plantlink.services``) and turns its typed
result into the JSON the REST routes answer. No web framework types; errors are ``QueryError`` (bad argument,
400), ``NotFound`` (404) and ``AccessDenied`` (403), each naming the argument at fault.

Every function takes the services (or a started runtime: ``scope.services_of``) and the caller (``who``: a
``plantlink.identity.Principal``), and shows only the sites it may view. Times are integer epoch microseconds
in, ``{"ts": ISO UTC, "ts_ms": epoch ms}`` out. The services block (historian and store reads): from async code
call these functions in a worker thread.

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
    AccessDenied,
    Caller,
    NotFound,
    page,
    services_of,
)
from plantlink.api.timefmt import iso_many, ms_many, stamp
from plantlink.samples import Quality, value_reasons

if TYPE_CHECKING:
    from plantlink.model.plant import TagInfo
    from plantlink.services.downtime import DowntimeEvent

__all__ = [
    "AccessDenied", "NotFound", "aggregate_history", "assign_reason", "bottleneck", "downsample_history",
    "downtime_events", "hierarchy", "latest", "line_costs", "oee", "oee_by_shift", "oee_period", "overview",
    "pareto", "period_bounds", "raw_history", "reasons", "state_timeline", "states_now", "tag", "tags",
]


# -- hierarchy and tags ----------------------------------------------------------------------------------
def _tag_dict(tid: int, t: TagInfo) -> dict[str, Any]:
    return {"id": tid, "path": t.path, "name": t.tag.name, "unit": t.tag.unit, "type": t.tag.type,
            "description": t.tag.description, "writable": t.tag.writable, "machine": t.path.rsplit("/", 1)[0],
            "device": t.device, "protocol": t.protocol}


def hierarchy(rt: Any, who: Caller, *, with_tags: bool = True) -> dict[str, Any]:
    """Enterprise -> sites -> areas -> lines -> machines (-> tags), only the sites ``who`` may view."""
    idx = services_of(rt).plant
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


def tag(rt: Any, who: Caller, ref: str | int) -> dict[str, Any]:
    """One tag by path or id."""
    found = services_of(rt).history.tag(who, ref)
    return _tag_dict(found.id, found.info)


def tags(rt: Any, who: Caller, *, prefix: str | None = None, limit: int = DEFAULT_PAGE,
         offset: int = 0) -> dict[str, Any]:
    """A page of the tags the caller may view, in model order, optionally under a path ``prefix``."""
    p = services_of(rt).history.tags(who, prefix=prefix, limit=limit, offset=offset)
    return page([_tag_dict(t.id, t.info) for t in p.items], p.total, p.limit, p.offset)


# -- latest values ---------------------------------------------------------------------------------------
def latest(rt: Any, who: Caller, refs: list[str | int]) -> list[dict[str, Any]]:
    """The last known sample of each tag: ``value`` (numbers) or ``text``, unit, quality name, time."""
    found = services_of(rt).history.latest(who, refs)
    return rows_of_latest(found.table, [t.info for t in found.tags])


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
def raw_history(rt: Any, who: Caller, ref: str | int, start_us: int, end_us: int,
                limit: int = 10_000) -> dict[str, Any]:
    """Raw samples in ``[start, end)``, columnar. When ``limit`` cut the answer, ``next_start`` gives where to
    continue (the next page starts there)."""
    found = services_of(rt).history.raw(who, ref, start_us, end_us, limit)
    t, info = found.table, found.tag.info
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    q = t.column("quality").to_numpy(zero_copy_only=False)
    out: dict[str, Any] = {"tag": info.path, "id": found.tag.id, "unit": info.tag.unit, "count": t.num_rows,
                           "ts": iso_many(ts), "ts_ms": ms_many(ts)}
    if pa.types.is_string(t.column("value").type):
        out["text"] = t.column("value").to_pylist()
    else:
        out["value"] = _floats(t.column("value"))
        why = value_reasons(t.column("value"))
        if why is not None:
            out["reason"] = why.tolist()
    out["quality"] = np.where(q >= Quality.GOOD, "good", np.where(q >= Quality.UNCERTAIN, "uncertain", "bad")).tolist()
    out["next_start"] = stamp(int(ts[-1]) + 1) if found.more and ts.size else None
    return out


def _floats(col: pa.ChunkedArray | pa.Array) -> list[float | None]:
    arr = col.to_numpy(zero_copy_only=False).astype(np.float64)
    vals: list[float | None] = arr.tolist()
    bad = np.flatnonzero(~np.isfinite(arr))
    for i in bad.tolist():
        vals[i] = None
    return vals


def aggregate_history(rt: Any, who: Caller, refs: list[str | int], start_us: int, end_us: int,
                      interval_us: int, aggregates: list[str] | None = None) -> dict[str, Any]:
    """Per tag, one row per ``interval`` bucket with the chosen aggregates (default: all)."""
    found = services_of(rt).history.aggregate(who, refs, start_us, end_us, interval_us, aggregates)
    table = found.table
    tag_col = table.column("tag_id").to_numpy(zero_copy_only=False)
    bucket = table.column("bucket").cast(pa.int64()).to_numpy(zero_copy_only=False) if table.num_rows else \
        np.zeros(0, np.int64)
    series = []
    for t in found.tags:
        rows = np.flatnonzero(tag_col == t.id)
        item: dict[str, Any] = {"tag": t.info.path, "id": t.id, "unit": t.info.tag.unit,
                                "bucket": iso_many(bucket[rows]), "bucket_ms": ms_many(bucket[rows])}
        for a in found.aggregates:
            item[a] = _floats(table.column(a).take(pa.array(rows)))
        series.append(item)
    return {"interval_ms": found.interval_us // 1000, "aggregates": list(found.aggregates), "series": series}


def downsample_history(rt: Any, who: Caller, ref: str | int, start_us: int, end_us: int,
                       n: int = 1000) -> dict[str, Any]:
    """About ``n`` points that keep the shape of the series (the historian's MinMaxLTTB), for trends."""
    found = services_of(rt).history.downsample(who, ref, start_us, end_us, n)
    t, info = found.table, found.tag.info
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    return {"tag": info.path, "id": found.tag.id, "unit": info.tag.unit, "count": t.num_rows,
            "ts": iso_many(ts), "ts_ms": ms_many(ts), "value": _floats(t.column("value"))}


# -- machine states --------------------------------------------------------------------------------------
def states_now(rt: Any, who: Caller, *, site: str | None = None, line: str | None = None) -> list[dict[str, Any]]:
    """Each visible machine's current state and since when."""
    return [{"machine": s.machine, "line": s.line, "site": s.site, "state": s.state, **stamp(s.since_us, "since")}
            for s in services_of(rt).states.now(who, site=site, line=line)]


def state_timeline(rt: Any, who: Caller, machine: str, start_us: int, end_us: int, *,
                   limit: int = DEFAULT_PAGE, offset: int = 0) -> dict[str, Any]:
    """The machine's state intervals overlapping the range (clipped to it; the open one ends now)."""
    tl = services_of(rt).states.timeline(who, machine, start_us, end_us, limit=limit, offset=offset)
    items: list[object] = [
        {"state": iv.state, "shift": iv.shift, **stamp(iv.start_us, "start"), **stamp(iv.end_us, "end"),
         "duration_s": None if iv.end_us is None else (iv.end_us - iv.start_us) / 1e6, "end_reason": iv.end_reason}
        for iv in tl.items
    ]
    return {"machine": tl.machine, **page(items, tl.total, tl.limit, tl.offset)}


# -- downtime --------------------------------------------------------------------------------------------
def _event_dict(ev: DowntimeEvent) -> dict[str, Any]:
    d = ev.to_dict()
    d.update(stamp(d.pop("start_us"), "start"))
    d.update(stamp(d.pop("end_us"), "end"))
    d.update(stamp(d.pop("reason_at"), "reason_at"))
    return dict(d)


def downtime_events(rt: Any, who: Caller, *, site: str | None = None, start_us: int | None = None,
                    end_us: int | None = None, limit: int = DEFAULT_PAGE, offset: int = 0,
                    **filters: Any) -> dict[str, Any]:
    """A page of downtime events, newest first. Filters: machine, line, state, micro, shift, has_reason.
    Without ``site``/``line``/``machine`` the caller must be able to view every site, or exactly one."""
    p = services_of(rt).downtime.events(who, site=site, start_us=start_us, end_us=end_us, limit=limit,
                                        offset=offset, **filters)
    return page([_event_dict(ev) for ev in p.items], p.total, p.limit, p.offset)


def downtime_event(rt: Any, who: Caller, event_id: int) -> dict[str, Any]:
    return _event_dict(services_of(rt).downtime.event(who, event_id))


def assign_reason(rt: Any, who: Caller, event_id: int, reason: str | None, *, group: str | None = None,
                  comment: str | None = None) -> dict[str, Any]:
    """Give (or with None, clear) a downtime event's reason; operators and above, checked against the line's
    reason tree (``ReasonError`` lists the valid ones)."""
    return _event_dict(services_of(rt).downtime.assign_reason(who, event_id, reason, group=group, comment=comment))


def reasons(rt: Any, who: Caller, line: str) -> dict[str, list[str]]:
    return services_of(rt).downtime.reasons(who, line)


def pareto(rt: Any, who: Caller, by: str, start_us: int, end_us: int, *, line: str | None = None,
           site: str | None = None) -> dict[str, Any]:
    """Lost time by reason, machine or shift in the range, on one line or site."""
    p = services_of(rt).downtime.pareto(who, by, start_us, end_us, line=line, site=site)
    rows = [dict(r.__dict__, micro=dict(r.micro.__dict__)) for r in p.rows]
    return {"by": p.by, **stamp(p.start_us, "start"), **stamp(p.end_us, "end"), "rows": rows,
            "total": dict(p.total.__dict__), "micro": dict(p.micro.__dict__), "unknown": dict(p.unknown.__dict__)}
