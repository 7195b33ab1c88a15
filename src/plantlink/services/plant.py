"""The plant index: the ONE lookup of sites, lines, machines and tags, with the access rules.

Plain Python (no web framework): the REST routes, the live stream, the HMI and the CLI all use it.

Access: a caller names objects by path (the site is its first part) or by id. Naming a path of a site the
caller may not see is refused (``AccessDenied``, 403: the caller already knows the site); an id of another
site's object is reported as not found (404), so ids do not leak what exists elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from plantlink.engines.calendar import PlannedTime
from plantlink.errors import AccessDenied, NotFound, QueryError
from plantlink.identity import Caller, Role
from plantlink.services.tags import LineRef, MachineRef, TagDirectory

if TYPE_CHECKING:
    from plantlink.model import Plant
    from plantlink.model.plant import TagInfo
    from plantlink.model.schema import Site

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "AccessDenied", "LineRef", "MachineRef", "NotFound", "PlantIndex",
           "check_page", "check_range"]

MAX_PAGE = 1000
DEFAULT_PAGE = 100
#: The longest range of a state, downtime or history query.
MAX_RANGE_US_STATES = 400 * 86400 * 1_000_000


class PlantIndex:
    """Lookups over a plant model and its tag directory (built once per model load)."""

    def __init__(self, plant: Plant, directory: TagDirectory):
        self.plant = plant
        self.directory = directory
        self.enterprise = plant.enterprise
        self.tags: Mapping[str, TagInfo] = directory.tags
        self.ids: Mapping[str, int] = directory.ids
        self.path_of: Mapping[int, str] = directory.path_of
        self.machines: Mapping[str, MachineRef] = directory.machines
        self.lines: Mapping[str, LineRef] = directory.lines
        self.sites: dict[str, Site] = {s.name: s for s in plant.sites}
        self.planned: dict[str, PlannedTime] = {s.name: PlannedTime.of_site(s) for s in plant.sites}

    @classmethod
    def build(cls, plant: Plant, tag_ids: Mapping[str, int]) -> PlantIndex:
        return cls(plant, TagDirectory.build(plant, tag_ids))

    # -- access ------------------------------------------------------------------------------------
    def visible_sites(self, who: Caller, role: Role = "viewer") -> list[str]:
        return [s for s in self.sites if who.can(s, role)]

    def require(self, who: Caller, site: str, role: Role = "viewer") -> None:
        if not who.can(site, role):
            raise AccessDenied(f"{role} rights at site {site!r} are needed", site)

    # -- lookups (paths: 403 for another site; ids: 404) --------------------------------------------
    def site(self, who: Caller, name: str, role: Role = "viewer") -> Site:
        if name not in self.sites:
            raise NotFound(f"unknown site {name!r}", field="site")
        self.require(who, name, role)
        return self.sites[name]

    def line(self, who: Caller, path: str, role: Role = "viewer") -> LineRef:
        ref = self.lines.get(path.strip("/"))
        if ref is None:
            raise NotFound(f"unknown line {path!r} (a line path is site/area/line)", field="line")
        self.require(who, ref.site, role)
        return ref

    def machine(self, who: Caller, path: str, role: Role = "viewer") -> MachineRef:
        ref = self.machines.get(path.strip("/"))
        if ref is None:
            raise NotFound(f"unknown machine {path!r} (a machine path is site/area/line/machine)",
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
                raise NotFound(f"unknown tag id {tid}", field=field)
            return tid, self.tags[path]
        info = self.tags.get(text.strip("/"))
        if info is None:
            raise NotFound(f"unknown tag {text!r}", field=field)
        self.require(who, info.site, role)
        return self.ids[info.path], info

    def machines_under(self, who: Caller, path: str) -> tuple[str, list[MachineRef]]:
        """The kind of scope (site, area, line, machine) that ``path`` names, and its machines."""
        p = path.strip("/")
        depth = p.count("/") + 1 if p else 0
        if depth == 4:
            return "machine", [self.machine(who, p)]
        if depth == 3:
            return "line", [self.machines[x] for x in self.line(who, p).machines]
        self.site(who, p.split("/", 1)[0])
        ms = [m for mp, m in self.machines.items() if mp.startswith(p + "/")]
        if depth not in (1, 2) or (not ms and depth == 2):
            raise NotFound(f"unknown scope {path!r}: give a site, area, line or machine path", field="scope")
        return ("site" if depth == 1 else "area"), ms


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
