"""A two-site plant model and its edge batches for the ingest tests.

Site ``sA`` and ``sB``, each one machine ``m1`` with ``TAGS`` tags on a disabled device. Batch ``k`` of a site
holds samples ``k*ROWS .. k*ROWS+ROWS-1`` of :func:`tests.edge.harness.burst`: every (tag, time) is unique, so a
historian's row count equals its distinct (tag, time) count unless something was stored twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantlink.edge.payload import PathTable
from plantlink.historian import open_historian
from plantlink.ingest.stream import publish_batch
from plantlink.model import load_plant
from tests.edge.harness import T0_US, TAGS, burst
from tests.plants import plant_yaml, site_yaml

SITES = ("sA", "sB")
ROWS = 40


def _machines() -> str:
    return "- name: m1\n  tags:\n" + "".join(f"    - {{name: t{i}, source: {{device: plc, address: {i}}}}}\n"
                                             for i in range(TAGS))


def write_plant(directory: Path) -> Path:
    sites = "".join(site_yaml(_machines(), site=s) for s in SITES)
    path = directory / "plant.yaml"
    path.write_text(plant_yaml("plc: {protocol: modbus, host: 127.0.0.1, port: 1, enabled: false}", sites=sites))
    return path


def plant(directory: Path) -> Any:
    return load_plant(write_plant(directory))


def table(site: str) -> PathTable:
    return PathTable({i + 1: f"{site}/a1/l1/m1/t{i}" for i in range(TAGS)})


def payload(site: str, k: int, edge: str = "e1") -> bytes:
    return table(site).encode(edge, k + 1, burst(k * ROWS, ROWS), epoch="ep1")


async def publish(js: Any, site: str, ks: range, edge: str = "e1") -> int:
    """Publish batches ``ks`` of ``site``; how many JetStream took as new."""
    new = 0
    for k in ks:
        new += await publish_batch(js, site, edge, k + 1, payload(site, k, edge), epoch="ep1")
    return new


def count_dir(data_dir: Path) -> tuple[int, set[tuple[str, int]]]:
    """A stopped worker's historian: (rows, the distinct (path, ts) pairs)."""
    h = open_historian("duckdb", path=data_dir / "historian.duckdb")
    try:
        tags = h.tags()
        paths = dict(zip(tags.column("tag_id").to_pylist(), tags.column("path").to_pylist(), strict=True))
        t = h.raw_many(list(paths), T0_US - 10**9, T0_US + 10**14, limit=10**8)
        pairs = set(zip([paths[i] for i in t.column("tag_id").to_pylist()],
                        t.column("ts").cast("int64").to_pylist(), strict=True))
        return t.num_rows, pairs
    finally:
        h.close()
