"""Remaining useful life, estimated on a schedule (every ``rul.every``, default 10 minutes) in a thread of its
own, never on the event loop and not per batch.

Per machine with a ``rul:`` block: the first run (and one a day after) trains a ``services.rul.RemainingLife``
estimator on the historian's run-to-failure history (the last ``rul.history``: failures are the instants
``fault_tag`` turns to ``failure_code``; at least three are needed), then each run estimates the RUL of the
part fitted at the last failure: hours left with a band, and the earliest / expected / latest failure date.
The expected hours become a sample of ``<machine>/rul_hours`` (stored like any tag) and, below
``threshold_hours``, the machine's ``rul_low`` alarm is active (through the alarm engine: both handed to the
event loop with ``call_soon_threadsafe``). What cannot be estimated (too few failures, a short history) is the
machine's ``problem`` in its status, not an error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from plantlink.engines.alarms.derived import RUL_ALARM
from plantlink.errors import PlantlinkError
from plantlink.model.analytics import RUL_TAG, RulSettings
from plantlink.samples import Quality, now_us, numeric_batch
from plantlink.services.deps import SampleReader
from plantlink.services.rul import RemainingLife

log = logging.getLogger("plantlink.engines.rul")

#: A model is trained again after this long (new failures teach it more).
RETRAIN_US = 86400 * 1_000_000


@dataclass
class RulMachine:
    machine: str
    settings: RulSettings
    tag_ids: tuple[int, ...]
    fault_id: int
    rul_id: int
    trained_us: int | None = None
    problem: str | None = None
    reading: dict[str, Any] | None = None

    @property
    def alarm_key(self) -> str:
        return f"{self.machine}/{RUL_TAG}:{RUL_ALARM}"


class RulEngine:
    def __init__(self, plant: Any, tag_ids: Mapping[str, int], alarms: Any,
                 sink: Callable[[pa.RecordBatch], None], samples: Callable[[], SampleReader | None]):
        self.alarms, self.sink = alarms, sink
        self.life = RemainingLife(samples)
        self.machines: dict[str, RulMachine] = _machines(plant, tag_ids)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def reload(self, plant: Any, tag_ids: Mapping[str, int]) -> None:
        """Take the ``rul:`` blocks of a model applied while running: a machine whose settings and tags did not
        change keeps its trained estimator; a changed or new one trains at its next round; a removed one is no
        longer estimated. Its schedule (``every``) follows from the next round."""
        fresh = _machines(plant, tag_ids)
        for path, rm in fresh.items():
            old = self.machines.get(path)
            if old is not None and (old.settings, old.tag_ids, old.fault_id, old.rul_id) == (
                    rm.settings, rm.tag_ids, rm.fault_id, rm.rul_id):
                fresh[path] = old
        self.machines = fresh  # one assignment: the thread's round sees the old machines or the new ones

    # -- schedule ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (from the event loop: results are handed back to it)."""
        if not self.machines or self._thread is not None:
            return
        self.loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="plantlink-rul", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._every()):
            self.run_once()

    def _every(self) -> float:
        machines = list(self.machines.values())
        return min(m.settings.every for m in machines) if machines else 600.0

    # -- one round --------------------------------------------------------------------------------------
    def run_once(self, at_us: int | None = None) -> None:
        """Train where due and estimate every machine at ``at_us`` (default now); in the calling thread."""
        t = now_us() if at_us is None else at_us
        for rm in list(self.machines.values()):
            try:
                self._estimate(rm, t)
            except PlantlinkError as exc:
                if str(exc) != rm.problem:  # told once, not every round
                    log.warning("rul: %s", exc)
                rm.problem = str(exc)
            except Exception as exc:  # a failed round is a visible problem; the next one tries again
                rm.problem = f"{type(exc).__name__}: {exc}"
                log.exception("rul: %s failed", rm.machine)
        self.runs += 1

    def _estimate(self, rm: RulMachine, t: int) -> None:
        st = rm.settings
        interval = int(st.interval * 1e6)
        if rm.trained_us is None or t - rm.trained_us >= RETRAIN_US:
            self.life.train(rm.machine, rm.tag_ids, rm.fault_id, st.failure_code, t - int(st.history * 1e6), t,
                            interval)
            rm.trained_us = t
        r = self.life.estimate(rm.machine, t)
        hours = interval / 3.6e9
        e = r.estimate
        rm.problem = None
        rm.reading = {"at_us": t, "since_us": r.since_us, "hours": e.rul * hours, "lower_hours": e.lower * hours,
                      "upper_hours": e.upper * hours, "censored": e.censored,
                      "failure": [d.timestamp() for d in r.failure], "threshold_hours": st.threshold_hours}
        self._hand_over(rm, t, e.rul * hours)

    def _hand_over(self, rm: RulMachine, t: int, value: float) -> None:
        def deliver() -> None:
            self.sink(numeric_batch([rm.rul_id], t, [value], int(Quality.GOOD)))
            self.alarms.derive([rm.alarm_key], [t], [value < rm.settings.threshold_hours], [value])

        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(deliver)
        else:
            deliver()

    def status(self, machine: str) -> dict[str, Any]:
        rm = self.machines[machine]
        return {"threshold_hours": rm.settings.threshold_hours, "every_s": rm.settings.every,
                "trained_us": rm.trained_us, "problem": rm.problem, "estimate": rm.reading}


def _machines(plant: Any, tag_ids: Mapping[str, int]) -> dict[str, RulMachine]:
    out = {}
    for path, m in plant.machines():
        r = m.rul
        if r is None or f"{path}/{RUL_TAG}" not in tag_ids:
            continue
        out[path] = RulMachine(path, r, tuple(tag_ids[f"{path}/{t}"] for t in r.tags),
                               tag_ids[f"{path}/{r.fault_tag}"], tag_ids[f"{path}/{RUL_TAG}"])
    return out
