"""Live analytics of the machines: anomaly detection (train on a baseline a user picks, status, scores) and
remaining useful life (the latest estimate). The engines (``engines.anomaly``, ``engines.rul``) score and
estimate; this service checks access, trains (in the caller's worker thread: the API's sync routes run in
the thread pool, never on the event loop), audits and answers.

Training reads the machine's ``anomaly.tags`` from the historian as their means per ``anomaly.interval`` over
``[start, end)``; errors name the machine, the tag and the period (``BaselineError``, 400 ``bad_data``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from plantlink.audit.sink import AuditSink
from plantlink.errors import BaselineError, NotFound, QueryError, Unavailable
from plantlink.identity import Caller
from plantlink.model.analytics import RUL_TAG, SCORE_TAG
from plantlink.samples import iso_us, now_us
from plantlink.services.anomaly import _make, baseline_matrix
from plantlink.services.deps import SampleReader
from plantlink.services.plant import PlantIndex, check_range

#: The longest baseline one training reads, and the fewest rows (instants with every tag) it takes.
MAX_BASELINE_US = 92 * 86400 * 1_000_000
MIN_ROWS = 20


@dataclass(frozen=True)
class AnomalyStatus:
    machine: str
    site: str
    score_tag: str
    status: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "site": self.site, "score_tag": self.score_tag, **self.status}


class AnalyticsService:
    def __init__(self, index: PlantIndex, samples: Callable[[], SampleReader | None],
                 anomaly: Callable[[], Any], rul: Callable[[], Any], audit: Callable[[], AuditSink | None]):
        self.index, self._samples, self._anomaly, self._rul, self._audit = index, samples, anomaly, rul, audit

    def _hist(self) -> SampleReader:
        h = self._samples()
        if h is None:
            raise Unavailable("the historian is not open")
        return h

    def _engine(self) -> Any:
        e = self._anomaly()
        if e is None:
            raise Unavailable("the anomaly engine is not running")
        return e

    def _machine(self, who: Caller, machine: str, role: str = "viewer") -> tuple[Any, Any]:
        ref = self.index.machine(who, machine, role)  # type: ignore[arg-type]
        ms = self._engine().machines.get(ref.path)
        if ms is None:
            raise NotFound(f"machine {ref.path} has no anomaly block in the plant model", field="machine")
        return ref, ms

    # -- anomaly ----------------------------------------------------------------------------------------
    def anomaly_machines(self, who: Caller) -> list[str]:
        e = self._anomaly()
        if e is None:
            return []
        sites = set(self.index.visible_sites(who))
        return [m for m in e.machines if m.split("/", 1)[0] in sites]

    def anomaly(self, who: Caller, machine: str) -> AnomalyStatus:
        """The detector of ``machine``: mode, trained or not (and on what), the latest score, crossings."""
        ref, _ = self._machine(who, machine)
        return AnomalyStatus(ref.path, ref.site, f"{ref.path}/{SCORE_TAG}", self._engine().status(ref.path))

    def anomaly_of(self, machine: str) -> dict[str, Any] | None:
        """The status without a caller (the machine page has checked access already); None without a block."""
        e = self._anomaly()
        return None if e is None or machine not in e.machines else dict(e.status(machine))

    def train(self, who: Caller, machine: str, start_us: int | None = None, end_us: int | None = None
              ) -> AnomalyStatus:
        """Train ``machine``'s detector on ``[start_us, end_us)`` (default: the block's ``baseline``), save it
        and score with it from now on. Engineer at the machine's site; audited."""
        from plantlink.engines.anomaly import Trained

        ref, ms = self._machine(who, machine, "engineer")
        st = ms.settings
        if start_us is None or end_us is None:
            if st.baseline is None:
                raise QueryError(f"give from and to: machine {ref.path} has no default baseline", field="from")
            start_us = int(st.baseline.start.timestamp() * 1e6) if start_us is None else start_us
            end_us = int(st.baseline.end.timestamp() * 1e6) if end_us is None else end_us
        check_range(start_us, end_us, MAX_BASELINE_US, "baseline")
        ids = [self.index.ids.get(t) for t in ms.tags]
        missing = [t for t, i in zip(ms.tags, ids, strict=True) if i is None]
        if missing:
            raise NotFound(f"tag {missing[0]} of the anomaly block does not exist", field="tags")
        period = f"[{iso_us(start_us)}, {iso_us(end_us)})"
        interval_us = int(st.interval * 1e6)
        x = self._baseline(ref.path, ms.tags, [int(i) for i in ids if i is not None], start_us, end_us,
                           interval_us, period, st.lags)
        detector = _make(st.detector, st.lags, st.smooth, st.variance, st.alpha)
        try:
            detector.learn_many(x, columns=list(ms.tags))
        except BaselineError as e:
            raise BaselineError(f"{ref.path}, baseline {period}: {e}", "from") from None
        t = Trained(ref.path, ms.tags, st.detector, detector, start_us, end_us, interval_us, int(x.shape[0]),
                    now_us(), who.name)
        engine = self._engine()
        engine.files.save(t)
        engine.install(t)
        sink = self._audit()
        if sink is not None:
            sink.record("anomaly.train", who.name, ref.site, ref.path,
                        {"start_us": start_us, "end_us": end_us, "rows": t.rows, "detector": st.detector,
                         "mode": st.mode})
        return self.anomaly(who, ref.path)

    def _baseline(self, machine: str, tags: tuple[str, ...], ids: list[int], start_us: int, end_us: int,
                  interval_us: int, period: str, lags: int = 0) -> np.ndarray:
        table = self._hist().aggregate(ids, start_us, end_us, interval_us, ["mean"])
        have = set(np.asarray(table.column("tag_id").to_numpy(), dtype=np.int64).tolist()) if table.num_rows else set()
        empty = [t for t, i in zip(tags, ids, strict=True) if i not in have]
        if empty:
            raise BaselineError(f"{machine}: no data of tag {empty[0]} in the baseline {period}", "from")
        x, _ = baseline_matrix(table, ids)
        need = max(MIN_ROWS, 5 * len(ids) * (lags + 1)) + lags  # lags: 5 rows per column of the extended rows
        if x.shape[0] < need:
            raise BaselineError(f"{machine}: the baseline {period} is too short: {x.shape[0]} intervals of "
                                f"{interval_us / 1e6:g} s with every tag, at least {need} needed", "from")
        return x

    # -- remaining useful life ------------------------------------------------------------------------
    def rul(self, who: Caller, machine: str) -> dict[str, Any]:
        """The latest RUL estimate of ``machine`` (None before the first), its band and failure dates."""
        ref = self.index.machine(who, machine)
        e = self._rul()
        if e is None or ref.path not in e.machines:
            raise NotFound(f"machine {ref.path} has no rul block in the plant model", field="machine")
        out = {"machine": ref.path, "site": ref.site, "tag": f"{ref.path}/{RUL_TAG}", **e.status(ref.path)}
        est = out.get("estimate")
        if est is not None:  # the failure dates in the site's time
            zone = ZoneInfo(self.index.sites[ref.site].timezone)
            est = dict(est)
            est["failure"] = [datetime.fromtimestamp(x, zone).isoformat(timespec="minutes") for x in est["failure"]]
            out["estimate"] = est
        return out

    def rul_of(self, machine: str) -> dict[str, Any] | None:
        e = self._rul()
        return None if e is None or machine not in e.machines else dict(e.status(machine))
