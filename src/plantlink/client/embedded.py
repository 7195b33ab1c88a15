"""Embedded mode: the historian and store of a data directory, read through the same services (and the same
encoders) the REST API answers with, in this process.

DuckDB lets one process at a time open the historian: while ``plantlink run``/``demo`` runs on the directory,
opening it fails (``DataDirInUse``: connect to the server's URL instead); while a connection is open, a
``plantlink run`` on the directory cannot start. Close connections (``with plantlink.connect(...)``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from plantlink.api import energy as energy_api
from plantlink.api import queries
from plantlink.client import frames
from plantlink.datadir import STORE_URL_ENV, missing_data_dir
from plantlink.errors import HistorianError, RequestError, Unavailable
from plantlink.historian import Historian, TagMeta, default_path, open_historian
from plantlink.identity import Principal
from plantlink.model import Plant, load_plant
from plantlink.services import Components, Services
from plantlink.services import export as ex
from plantlink.services.history import MAX_RAW_RANGE_US
from plantlink.services.latest import LatestValues
from plantlink.store import Store, default_url

#: Who the services see: whoever may read the data directory's files may read everything in it.
LOCAL = Principal("python-api", {"*": "admin"})
#: Samples per historian read (a raw read answers at most 1,000,000).
RAW_PAGE = 500_000


class DataDirInUse(Unavailable):
    """The data directory's historian is open in another process (a running plantlink)."""


def model_of(data_dir: Path, store: Store) -> Path:
    """The plant model last loaded on ``data_dir`` (the audit trail's last ``config.load``)."""
    from plantlink.audit import AuditLog

    last = next(AuditLog(store.engine).query(kind="config.load", newest_first=True, limit=1), None)
    if last is None or not last.target or not Path(last.target).is_file():
        found = f" ({last.target} is gone)" if last is not None and last.target else ""
        raise RequestError(f"cannot tell which plant model {data_dir} holds the data of{found}: give it, "
                          "plantlink.connect(data_dir, plant='plant.yaml')", field="plant")
    return Path(last.target)


def _open_historian(data_dir: Path) -> Historian:
    path = default_path(data_dir)
    if not path.is_file():
        raise Unavailable(f"{data_dir.absolute()} holds no historian ({path.name}): give the data directory of "
                          "your plant (plantlink run) or demo (plantlink demo)", field="data_dir")
    try:
        return open_historian("duckdb", path=path, background_flush=False)
    except HistorianError as exc:
        if "lock" in str(exc).lower():
            raise DataDirInUse(
                f"{data_dir.absolute()} is in use by a running plantlink (its historian is locked): connect to "
                "that server instead, plantlink.connect('http://host:8080', token=...)", field="data_dir") from exc
        raise


class DataDirSource:
    """The services over a data directory's historian and store, opened in this process. The store is the one
    ``$PLANTLINK_STORE_URL`` names when set (as for ``plantlink run``), else the SQLite file under the directory."""

    def __init__(self, data_dir: str | Path, plant: str | Path | Plant | None = None):
        root = Path(data_dir)
        store_url = os.environ.get(STORE_URL_ENV) or None
        problem = missing_data_dir(root, store_url)
        if problem is not None:
            raise Unavailable(problem.split(": give")[0] + ": give the data directory of your plant or demo",
                              field="data_dir")
        self.where = str(root.absolute())
        self.historian = _open_historian(root)
        self.store: Store | None = None
        try:
            self.store = Store.open(store_url or default_url(root))
            model = plant if isinstance(plant, Plant) else load_plant(Path(plant) if plant is not None
                                                                      else model_of(root, self.store))
            self.services = self._build(model)
        except BaseException:
            self.close()
            raise

    def _build(self, plant: Plant) -> Services:
        h = self.historian
        tag_ids = h.register_tags([TagMeta(t.path, t.tag.unit, t.tag.type) for t in plant.tags])
        latest = LatestValues()
        latest.seed(h.latest(sorted(set(tag_ids.values()))))
        none: Any = lambda: None  # noqa: E731  (no engine runs here)
        return Services.build(plant, tag_ids, latest, Components(
            bus=none, historian=lambda: self.historian, store=lambda: self.store, states=none, downtime=none,
            alarms=none, control=none, audit=none, trend_store=lambda: self.store))

    def close(self) -> None:
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
            self.store = None
        self.historian.close()

    # -- what the REST API answers -------------------------------------------------------------------------
    def tag_paths(self) -> list[str]:
        return list(self.services.plant.tags)

    def trend(self, paths: Sequence[str], start_us: int, end_us: int) -> pa.Table:
        """What the trend export answers (``frames.RAW_SCHEMA``), its checks included (one site, numeric tags),
        read with ``HistoryService.raw`` as the export reads it, without its text times (4/5 of its time)."""
        export = ex.trend(self.services, LOCAL, list(paths), start_us, end_us)
        tables = [self._samples(path, start_us, end_us) for path in export.details["tags"]]
        return pa.concat_tables(tables) if tables else frames.RAW_SCHEMA.empty_table()

    def _samples(self, path: str, start_us: int, end_us: int) -> pa.Table:
        parts, lo = [], start_us
        while lo < end_us:
            hi = min(lo + MAX_RAW_RANGE_US, end_us)
            found = self.services.history.raw(LOCAL, path, lo, hi, RAW_PAGE)
            table, lo = found.table, hi
            if found.more:  # a full page: the samples at its last instant are read again with the next one
                ts = table.column("ts").cast(pa.int64()).to_numpy()
                cut = int(np.searchsorted(ts, ts[-1]))
                table, lo = (table.slice(0, cut), int(ts[-1])) if cut else (table, int(ts[-1]) + 1)
            parts.append(ex.typed_batch(table, path))  # what the remote mode reads from the Arrow export
        return pa.Table.from_batches(parts, frames.RAW_SCHEMA)

    def aggregate(self, paths: Sequence[str], start_us: int, end_us: int, interval_us: int,
                  aggregates: Sequence[str]) -> dict[str, Any]:
        return queries.aggregate_history(self.services, LOCAL, list(paths), start_us, end_us, interval_us,
                                         list(aggregates))

    def latest(self, paths: Sequence[str]) -> list[dict[str, Any]]:
        return queries.latest(self.services, LOCAL, list(paths))

    def timeline(self, machine: str, start_us: int, end_us: int, limit: int, offset: int) -> dict[str, Any]:
        return queries.state_timeline(self.services, LOCAL, machine, start_us, end_us, limit=limit, offset=offset)

    def oee(self, scope: str, start_us: int, end_us: int) -> dict[str, Any]:
        return queries.oee(self.services, LOCAL, scope, start_us, end_us)

    def energy(self, scope: str, start_us: int, end_us: int, by: str | None) -> dict[str, Any]:
        return energy_api.energy(self.services, LOCAL, scope, start_us, end_us, by_shift=by == "shift")

    def downtime(self, where: dict[str, str], start_us: int, end_us: int, limit: int, offset: int
                 ) -> dict[str, Any]:
        return queries.downtime_events(self.services, LOCAL, start_us=start_us, end_us=end_us, limit=limit,
                                       offset=offset, **where)
