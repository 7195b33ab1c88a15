"""Alarm definitions compiled into numpy arrays: one row per definition, grouped by tag for batch lookup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from plantlink.model.alarms import PRIORITIES, AlarmDef

# kinds of condition; DERIVED: computed outside the engine (SPC rules, anomaly, RUL), set by ``AlarmEngine.derive``
ABOVE, BELOW, DEVIATION, RATE, DISCRETE, COMM, DERIVED = range(7)
_KIND = {"hihi": ABOVE, "hi": ABOVE, "lo": BELOW, "lolo": BELOW, "deviation": DEVIATION, "rate": RATE,
         "discrete": DISCRETE, "comm": COMM, "spc": DERIVED, "anomaly": DERIVED, "rul": DERIVED,
         "edge": DERIVED}


@dataclass(frozen=True)
class AlarmInfo:
    """What the engine knows of one alarm besides its arrays: ``key`` is ``<tag path>:<alarm name>``."""

    index: int
    key: str
    tag: str
    site: str
    machine: str
    defn: AlarmDef

    @property
    def priority(self) -> str:
        return self.defn.priority


@dataclass
class Compiled:
    infos: list[AlarmInfo]
    tag_paths: list[str]
    tag_of: np.ndarray  # int64 [D] index into tag_paths
    sp_of: np.ndarray  # int64 [D] setpoint tag index, -1 without
    kind: np.ndarray  # int8 [D]
    limit: np.ndarray  # float64 [D]
    deadband: np.ndarray  # float64 [D]
    trigger: np.ndarray  # float64 [D] (discrete)
    on_us: np.ndarray  # int64 [D]
    off_us: np.ndarray  # int64 [D]
    priority: np.ndarray  # int8 [D] index in PRIORITIES
    latched: np.ndarray  # bool [D]

    @property
    def size(self) -> int:
        return len(self.infos)


def compile_alarms(items: Sequence[tuple[str, str, str, AlarmDef, str | None]]) -> Compiled:
    """Compile (tag path, site, machine path, definition, setpoint tag path or None) tuples."""
    tag_index: dict[str, int] = {}

    def idx(path: str) -> int:
        return tag_index.setdefault(path, len(tag_index))

    infos, tag_of, sp_of = [], [], []
    for i, (path, site, machine, d, sp_path) in enumerate(items):
        infos.append(AlarmInfo(i, f"{path}:{d.name}", path, site, machine, d))
        tag_of.append(idx(path))
        sp_of.append(-1 if sp_path is None else idx(sp_path))
    defs = [it[3] for it in items]
    n = len(defs)
    return Compiled(
        infos=infos,
        tag_paths=list(tag_index),
        tag_of=np.asarray(tag_of, dtype=np.int64).reshape(n),
        sp_of=np.asarray(sp_of, dtype=np.int64).reshape(n),
        kind=np.array([_KIND[d.type] for d in defs], dtype=np.int8),
        limit=np.array([np.nan if d.limit is None else d.limit for d in defs], dtype=np.float64),
        deadband=np.array([d.deadband for d in defs], dtype=np.float64),
        trigger=np.array([d.trigger_value for d in defs], dtype=np.float64),
        on_us=np.array([round(d.on_delay * 1e6) for d in defs], dtype=np.int64),
        off_us=np.array([round(d.off_delay * 1e6) for d in defs], dtype=np.int64),
        priority=np.array([PRIORITIES.index(d.priority) for d in defs], dtype=np.int8),
        latched=np.array([d.latched for d in defs], dtype=bool),
    )


def plant_alarms(plant: object) -> list[tuple[str, str, str, AlarmDef, str | None]]:
    """Every alarm of a ``model.Plant`` as the tuples ``compile_alarms`` takes: the tags' ``alarms:``, then
    the alarms the analytics raise (``derived.derived_alarms``)."""
    from plantlink.engines.alarms.derived import derived_alarms

    out: list[tuple[str, str, str, AlarmDef, str | None]] = []
    for t in plant.tags:  # type: ignore[attr-defined]
        machine = f"{t.site}/{t.area}/{t.line}/{t.machine}"
        for a in t.tag.alarms:
            sp = None if a.setpoint is None else f"{machine}/{a.setpoint}"
            out.append((t.path, t.site, machine, a, sp))
    return out + derived_alarms(plant)


@dataclass
class TagIndex:
    """Batch tag ids -> compiled tag indices (ids sorted for ``searchsorted``), and definitions per tag (CSR)."""

    ids_sorted: np.ndarray  # uint32
    tag_sorted: np.ndarray  # int64: tag index of ids_sorted[i]
    by_tag: np.ndarray  # int64 [D]: definitions ordered by tag
    start: np.ndarray  # int64 [T+1]
    sp_by_tag: np.ndarray  # int64: deviation definitions ordered by setpoint tag
    sp_start: np.ndarray  # int64 [T+1]
    missing: list[str]
    #: id -> tag index (-1: none), when ids are dense enough for a direct lookup table
    lut: np.ndarray | None = None

    @classmethod
    def build(cls, c: Compiled, tag_ids: Mapping[str, int]) -> TagIndex:
        n_tags = len(c.tag_paths)
        pairs = [(tag_ids[p], i) for i, p in enumerate(c.tag_paths) if p in tag_ids]
        read = set(c.tag_of[c.kind != DERIVED].tolist())
        missing = [p for i, p in enumerate(c.tag_paths) if p not in tag_ids and i in read]
        pairs.sort()
        ids = np.array([p[0] for p in pairs], dtype=np.uint32)
        tags = np.array([p[1] for p in pairs], dtype=np.int64)
        evaluated = np.flatnonzero(c.kind != DERIVED)  # derived conditions are set, never read from samples
        order, start = _csr(c.tag_of[evaluated], n_tags)
        by_tag = evaluated[order]
        has_sp = np.flatnonzero(c.sp_of >= 0)
        sp_order, sp_start = _csr(c.sp_of[has_sp], n_tags)
        lut = None
        if ids.size and int(ids[-1]) <= 8 * ids.size + 1_000_000:
            lut = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
            lut[ids] = tags
        return cls(ids, tags, by_tag, start, has_sp[sp_order], sp_start, missing, lut)

    def rows_to_tags(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row positions that carry a known tag, their tag indices)."""
        if self.ids_sorted.size == 0 or ids.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if self.lut is not None:
            tag = self.lut[np.minimum(ids, self.lut.size - 1)]
            tag[ids >= self.lut.size] = -1
            rows = np.flatnonzero(tag >= 0)
            return rows, tag[rows]
        pos = np.searchsorted(self.ids_sorted, ids)
        pos[pos >= self.ids_sorted.size] = 0
        ok = self.ids_sorted[pos] == ids
        rows = np.flatnonzero(ok)
        return rows, self.tag_sorted[pos[rows]]


def _csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable").astype(np.int64)
    counts = np.bincount(keys, minlength=n) if keys.size else np.zeros(n, dtype=np.int64)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return order, start


def expand(start: np.ndarray, order: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows with tag indices ``tags``: (row of each pair, definition of each pair) over the CSR."""
    lo = start[tags]
    counts = start[tags + 1] - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    row = np.repeat(np.arange(tags.size, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    offs = np.arange(total, dtype=np.int64) - np.repeat(first, counts)
    return row, order[np.repeat(lo, counts) + offs]
