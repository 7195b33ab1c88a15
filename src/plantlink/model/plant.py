"""The validated plant: the hierarchy plus a flat table of tags bound to their devices."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from plantlink.model.analytics import RUL_TAG, SCORE_TAG
from plantlink.model.schema import Machine, PlantFile, Site, SourceRef, Tag

#: The "device" of derived tags (none reads them: the runtime writes them).
DERIVED_DEVICE = "plantlink"


@dataclass(frozen=True)
class TagInfo:
    """A tag with its place in the hierarchy and its validated, protocol-specific source."""

    path: str
    site: str
    area: str
    line: str
    machine: str
    tag: Tag
    device: str
    protocol: str
    source: BaseModel


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    protocol: str
    enabled: bool
    config: BaseModel


@dataclass
class Plant:
    """A plant model that passed validation. ``tags`` is in file order; paths are unique."""

    file: str
    spec: PlantFile
    devices: dict[str, DeviceInfo]
    tags: list[TagInfo]
    #: Tags the runtime writes (``<machine>/anomaly_score``, ``<machine>/rul_hours``): stored and read like
    #: any tag, bound to no device.
    derived: list[TagInfo] = field(default_factory=list)
    #: The YAML text the model was parsed from ("" when built otherwise).
    text: str = field(default="", repr=False, compare=False)
    _by_path: dict[str, TagInfo] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_path = {t.path: t for t in self.tags + self.derived}

    @property
    def enterprise(self) -> str:
        return self.spec.enterprise

    @property
    def sites(self) -> list[Site]:
        return self.spec.sites

    def tag(self, path: str) -> TagInfo:
        return self._by_path[path]

    @property
    def all_tags(self) -> list[TagInfo]:
        """The tags read from devices, then the derived ones."""
        return self.tags + self.derived

    def tags_of_device(self, device: str) -> list[TagInfo]:
        return [t for t in self.tags if t.device == device]

    def machines(self) -> list[tuple[str, Machine]]:
        """Every machine with its path ``site/area/line/machine``."""
        out = []
        for s in self.sites:
            for a in s.areas:
                for ln in a.lines:
                    for m in ln.machines:
                        out.append((f"{s.name}/{a.name}/{ln.name}/{m.name}", m))
        return out

    def summary(self) -> dict[str, Any]:
        """Counts a person checks at a glance: sites, areas, lines, machines, tags per protocol."""
        lines = [ln for s in self.sites for a in s.areas for ln in a.lines]
        return {
            "enterprise": self.enterprise,
            "sites": len(self.sites),
            "areas": sum(len(s.areas) for s in self.sites),
            "lines": len(lines),
            "machines": sum(len(ln.machines) for ln in lines),
            "devices": len(self.devices),
            "tags": len(self.tags),
            "tags_per_protocol": dict(sorted(Counter(t.protocol for t in self.tags).items())),
        }


def derived_tags(m: Machine, names: tuple[str, str, str, str]) -> list[TagInfo]:
    """The tags the machine's analytics blocks write (``<machine>/anomaly_score``, ``<machine>/rul_hours``)."""
    out: list[TagInfo] = []
    src = SourceRef(device=DERIVED_DEVICE)
    for block, name, unit, text in ((m.anomaly, SCORE_TAG, "", "Anomaly score"),
                                    (m.rul, RUL_TAG, "h", "Remaining useful life")):
        if block is not None:
            tag = Tag(name=name, display_name=text, unit=unit, source=src, decimals=2)
            out.append(TagInfo("/".join((*names, name)), *names, tag=tag, device=DERIVED_DEVICE,
                               protocol="derived", source=src))
    return out


def site_plant(plant: Plant, site: str) -> Plant:
    """``plant`` restricted to one site: that site's hierarchy and tags (the devices are kept, shared). What one
    ``plantlink ingest`` worker runs the engines of when it owns the site (docs/scale-out.md)."""
    sites = [s for s in plant.sites if s.name == site]
    if not sites:
        raise KeyError(f"no site {site!r} in the plant model")
    spec = plant.spec.model_copy(update={"sites": sites})
    return Plant(plant.file, spec, plant.devices, [t for t in plant.tags if t.site == site],
                 [t for t in plant.derived if t.site == site], plant.text)
