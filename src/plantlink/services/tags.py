"""The tag directory: path <-> id <-> spec of every tag of one plant model load, immutable.

Built once when the runtime has registered the model's tags with the historian (which gives the stable ids);
every service, the live stream and the HMI share it. Per machine and per line it holds the sorted numpy array
of tag ids (what the vectorised lookups and the live fan-out index with).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from plantlink.model import Plant
    from plantlink.model.plant import TagInfo
    from plantlink.model.schema import Line, Machine

IdArray = npt.NDArray[np.uint32]


def _no_ids() -> IdArray:
    return np.zeros(0, np.uint32)


@dataclass(frozen=True)
class MachineRef:
    path: str
    site: str
    area: str
    line: str  # the line's path
    name: str
    model: Machine
    tag_ids: IdArray


@dataclass(frozen=True)
class LineRef:
    path: str
    site: str
    area: str
    name: str
    model: Line
    machines: tuple[str, ...] = ()
    tag_ids: IdArray = field(default_factory=_no_ids)


@dataclass(frozen=True)
class TagDirectory:
    """Every tag of the model by path and by id, and the machines and lines with their tag ids."""

    tags: Mapping[str, TagInfo]
    ids: Mapping[str, int]
    path_of: Mapping[int, str]
    machines: Mapping[str, MachineRef]
    lines: Mapping[str, LineRef]
    all_ids: IdArray

    @classmethod
    def build(cls, plant: Plant, tag_ids: Mapping[str, int]) -> TagDirectory:
        """The directory of ``plant`` with the ids the historian gave (``tag_ids``: path -> id)."""
        tags = {t.path: t for t in plant.all_tags}
        ids = {p: int(i) for p, i in tag_ids.items() if p in tags}
        machines: dict[str, MachineRef] = {}
        lines: dict[str, LineRef] = {}
        for s in plant.sites:
            for a in s.areas:
                for ln in a.lines:
                    lpath = f"{s.name}/{a.name}/{ln.name}"
                    mpaths = tuple(f"{lpath}/{m.name}" for m in ln.machines)
                    for m, mpath in zip(ln.machines, mpaths, strict=True):
                        found = sorted(ids[p] for t in m.tags if (p := f"{mpath}/{t.name}") in ids)
                        machines[mpath] = MachineRef(mpath, s.name, a.name, lpath, m.name, m,
                                                     np.array(found, dtype=np.uint32))
                    per = [machines[p].tag_ids for p in mpaths]
                    lines[lpath] = LineRef(lpath, s.name, a.name, ln.name, ln, mpaths,
                                           np.concatenate(per) if per else _no_ids())
        return cls(MappingProxyType(tags), MappingProxyType(ids), MappingProxyType({i: p for p, i in ids.items()}),
                   MappingProxyType(machines), MappingProxyType(lines),
                   np.array(sorted(ids.values()), dtype=np.uint32))

    def id_of(self, path: str) -> int | None:
        return self.ids.get(path)

    def info(self, tag_id: int) -> TagInfo | None:
        path = self.path_of.get(tag_id)
        return None if path is None else self.tags[path]
