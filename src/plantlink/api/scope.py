"""The plant as the API sees it: one index over a running ``Runtime`` (paths, ids, sites) and the access rules.

Plain Python (no web framework): the REST routes, the WebSocket hub and the HMI all use it.

Access: a caller names objects by path (the site is its first part) or by id. Naming a path of a site the
caller may not see is refused (``AccessDenied``, 403: the caller already knows the site); an id of another
site's object is reported as not found (404), so ids do not leak what exists elsewhere.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from plantlink.engines.calendar import PlannedTime
from plantlink.errors import PlantlinkError, QueryError
from plantlink.identity import Caller, Role

if TYPE_CHECKING:
    from plantlink.model.plant import TagInfo
    from plantlink.model.schema import Line, Machine, Site
    from plantlink.runtime import Runtime

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class NotFoundError(PlantlinkError):
    """An object that does not exist (or that the caller may not know about). ``field`` names the argument."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


class AccessDenied(PlantlinkError):
    """The caller lacks the role needed at a site."""

    def __init__(self, message: str, site: str):
        self.site = site
        super().__init__(message)


@dataclass(frozen=True)
class MachineRef:
    path: str
    site: str
    area: str
    line: str  # the line's path
    name: str
    model: Machine
    tag_ids: npt.NDArray[np.uint32]


@dataclass(frozen=True)
class LineRef:
    path: str
    site: str
    area: str
    name: str
    model: Line
    machines: list[str] = field(default_factory=list)
    tag_ids: npt.NDArray[np.uint32] = field(default_factory=lambda: np.zeros(0, np.uint32))


class PlantIndex:
    """Lookups over the runtime's plant model and tag ids, built once per runtime."""

    def __init__(self, runtime: Runtime):
        plant = runtime.plant
        self.source = runtime.tag_ids
        self.enterprise = plant.enterprise
        self.tags: dict[str, TagInfo] = {t.path: t for t in plant.tags}
        self.ids: dict[str, int] = {p: int(i) for p, i in runtime.tag_ids.items() if p in self.tags}
        self.path_of: dict[int, str] = {i: p for p, i in self.ids.items()}
        self.sites: dict[str, Site] = {s.name: s for s in plant.sites}
        self.planned: dict[str, PlannedTime] = {s.name: PlannedTime.of_site(s) for s in plant.sites}
        self.machines: dict[str, MachineRef] = {}
        self.lines: dict[str, LineRef] = {}
        for s in plant.sites:
            for a in s.areas:
                for ln in a.lines:
                    lpath = f"{s.name}/{a.name}/{ln.name}"
                    mpaths = [f"{lpath}/{m.name}" for m in ln.machines]
                    for m, mpath in zip(ln.machines, mpaths, strict=True):
                        ids = [self.ids[f"{mpath}/{t.name}"] for t in m.tags if f"{mpath}/{t.name}" in self.ids]
                        self.machines[mpath] = MachineRef(mpath, s.name, a.name, lpath, m.name, m,
                                                          np.array(sorted(ids), dtype=np.uint32))
                    line_ids = [self.machines[p].tag_ids for p in mpaths]
                    self.lines[lpath] = LineRef(lpath, s.name, a.name, ln.name, ln, mpaths,
                                                np.concatenate(line_ids) if line_ids else np.zeros(0, np.uint32))

    # -- access ------------------------------------------------------------------------------------
    def visible_sites(self, who: Caller, role: Role = "viewer") -> list[str]:
        return [s for s in self.sites if who.can(s, role)]

    def require(self, who: Caller, site: str, role: Role = "viewer") -> None:
        if not who.can(site, role):
            raise AccessDenied(f"{role} rights at site {site!r} are needed", site)

    # -- lookups (paths: 403 for another site; ids: 404) --------------------------------------------
    def site(self, who: Caller, name: str, role: Role = "viewer") -> Site:
        if name not in self.sites:
            raise NotFoundError(f"unknown site {name!r}", field="site")
        self.require(who, name, role)
        return self.sites[name]

    def line(self, who: Caller, path: str, role: Role = "viewer") -> LineRef:
        ref = self.lines.get(path.strip("/"))
        if ref is None:
            raise NotFoundError(f"unknown line {path!r} (a line path is site/area/line)", field="line")
        self.require(who, ref.site, role)
        return ref

    def machine(self, who: Caller, path: str, role: Role = "viewer") -> MachineRef:
        ref = self.machines.get(path.strip("/"))
        if ref is None:
            raise NotFoundError(f"unknown machine {path!r} (a machine path is site/area/line/machine)",
                                field="machine")
        self.require(who, ref.site, role)
        return ref

    def tag(self, who: Caller, ref: str | int, role: Role = "viewer", field: str = "tag") -> tuple[int, TagInfo]:
        """A tag by path or numeric id: ``(id, TagInfo)``."""
        text = str(ref).strip()
        if text.isdigit():
            tid = int(text)
            path = self.path_of.get(tid)
            if path is None or not who.can(self.tags[path].site, role):
                raise NotFoundError(f"unknown tag id {tid}", field=field)
            return tid, self.tags[path]
        info = self.tags.get(text.strip("/"))
        if info is None:
            raise NotFoundError(f"unknown tag {text!r}", field=field)
        self.require(who, info.site, role)
        return self.ids[info.path], info


_INDEXES: weakref.WeakKeyDictionary[Runtime, PlantIndex] = weakref.WeakKeyDictionary()


def index(runtime: Runtime) -> PlantIndex:
    """The runtime's index (rebuilt if its tag ids were re-registered)."""
    idx = _INDEXES.get(runtime)
    if idx is None or idx.source is not runtime.tag_ids:
        if not runtime.tag_ids:
            raise PlantlinkError("the runtime is not started: no tag ids yet")
        idx = _INDEXES[runtime] = PlantIndex(runtime)
    return idx


def check_page(limit: int, offset: int, max_limit: int = MAX_PAGE) -> None:
    if not 1 <= limit <= max_limit:
        raise QueryError(f"limit must be between 1 and {max_limit}, got {limit}", field="limit")
    if offset < 0:
        raise QueryError(f"offset must be >= 0, got {offset}", field="offset")


def check_range(start_us: int, end_us: int, max_us: int | None = None, what: str = "range") -> None:
    if end_us <= start_us:
        raise QueryError(f"empty or reversed {what}: end must be after start", field="end")
    if max_us is not None and end_us - start_us > max_us:
        raise QueryError(f"{what} too long: at most {max_us / 86400e6:g} days", field="end")


def page(items: list[object], total: int, limit: int, offset: int) -> dict[str, object]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}
