"""Historian housekeeping on a schedule of its own: retention and rollups, in a thread off the event loop.

``Runtime`` starts one ``Maintenance`` once the historian is open. Every ``rollup_interval_s`` it asks the
historian to build the rollups of the hours that have ended (``Historian.build_rollups``: 1-hour rollups
from the 1-minute ones in the DuckDB backend), every ``retention_interval_s`` it deletes what is older than
the historian's retention (``Historian.apply_retention``). The first pass runs right after start (a
plantlink that was down for a week catches up at once). A pass that fails is logged and counted in
``errors`` and tried again at its next time; ``status()`` is in ``Runtime.status()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plantlink.historian import Historian
from plantlink.samples import now_us

log = logging.getLogger("plantlink.maintenance")


@dataclass(frozen=True)
class MaintenanceSettings:
    enabled: bool = True
    retention_interval_s: float = 3600.0
    rollup_interval_s: float = 300.0


class Maintenance:
    def __init__(self, historian: Historian, settings: MaintenanceSettings | None = None,
                 now: Callable[[], int] = now_us):
        self.historian = historian
        self.settings = settings or MaintenanceSettings()
        self.now = now
        self.runs = {"retention": 0, "rollups": 0}
        self.errors = 0
        self.last_error: str | None = None
        self.deleted_rows = 0
        self.rolled_up = 0
        self.last_run_us: dict[str, int | None] = {"retention": None, "rollups": None}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.settings.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="plantlink-maintenance", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the pass under way (if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        jobs: list[tuple[str, float, Callable[[int], int]]] = [
            ("rollups", self.settings.rollup_interval_s, self.historian.build_rollups),
            ("retention", self.settings.retention_interval_s, self.historian.apply_retention),
        ]
        due = {name: time.monotonic() for name, _, _ in jobs}
        while not self._stop.is_set():
            for name, every, job in jobs:
                if time.monotonic() >= due[name] and not self._stop.is_set():
                    self.run_once(name, job)
                    due[name] = time.monotonic() + every
            self._stop.wait(max(0.0, min(due.values()) - time.monotonic()))

    def run_once(self, name: str, job: Callable[[int], int]) -> None:
        t = self.now()
        try:
            n = job(t)
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{name}: {type(exc).__name__}: {exc}"
            log.exception("historian %s failed; tried again at its next time", name)
            return
        self.runs[name] += 1
        self.last_run_us[name] = t
        if name == "retention":
            self.deleted_rows += n
        else:
            self.rolled_up += n
        if n:
            log.info("historian %s: %d rows", name, n)

    def status(self) -> dict[str, Any]:
        return {"enabled": self.settings.enabled, "runs": dict(self.runs), "errors": self.errors,
                "last_error": self.last_error, "deleted_rows": self.deleted_rows, "rolled_up_rows": self.rolled_up,
                "last_run_us": dict(self.last_run_us)}
