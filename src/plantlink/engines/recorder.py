"""The recorder: what the engines decide, written to the relational store off the event loop.

The state, downtime and alarm engines do no database I/O while they run: each step turns samples (or state
changes) into *events* (``engines.events``) and hands them to one ``Recorder``. The recorder keeps them in
one outbox, in order, and writes them with one failure policy:

* events are written in order, up to ``batch`` of them in one transaction (one commit, not one per event);
* a transaction that fails is rolled back and its events are written one at a time until one succeeds
  again, so that a failing event is found; a write that fails is retried, the same event first (order
  matters: an interval opened after another closes it), with exponential backoff from ``base_backoff_s``
  doubling up to ``max_backoff_s``;
* after ``max_attempts`` failed attempts the event is set aside in the dead-letter file (one JSON line
  with the event, the error and the attempts; ``recorder-failed.jsonl`` in the data directory), counted in
  ``failed`` and logged, and the next event is written: one poisoned event does not stop the others;
* a store that does not answer (down, unreachable, connection lost: ``Sinks.unavailable``) is no poisoned
  event: the head event is retried (every ``max_backoff_s``) for as long as the outage lasts, counted in
  ``store_down``, and everything waiting is written in order when the store is back (catch up);
* the outbox holds ``capacity`` events; when it is full, ``submit`` waits up to ``block_s`` for room (the
  producer is the event loop: it is never held longer), then takes the events anyway and counts them in
  ``over_capacity``. A store that stays down therefore costs memory, visibly in the status, never data;
* ``close`` drains the outbox (a clean stop writes everything); what a store that is still down leaves
  after ``timeout`` goes to the dead-letter file too. Nothing is dropped without being counted and kept.

Threaded (``start``): one worker thread writes. Inline (never started; tests, benchmarks and tools that own
no event loop): ``submit`` writes at once in the caller's thread, and a failed event waits in the outbox,
retried on the next ``submit`` or ``flush`` once its backoff has run out (the caller is never put to sleep).

``status()`` (in ``Runtime.status()`` and the health endpoint) counts queued, written, retries, failed,
over_capacity and the age of the oldest event waiting.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantlink.engines.events import Event, Sinks

log = logging.getLogger("plantlink.engines.recorder")


@dataclass(frozen=True)
class RecorderPolicy:
    capacity: int = 100_000
    block_s: float = 0.05
    base_backoff_s: float = 0.05
    max_backoff_s: float = 5.0
    max_attempts: int = 12  # about 30 s of a store that does not answer, with the defaults
    batch: int = 500  # events per transaction

    def backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff_s, self.base_backoff_s * 2 ** max(0, attempts - 1)))


@dataclass
class _Queued:
    event: Event
    at: float  # monotonic time it was submitted
    attempts: int = 0
    due: float = 0.0  # monotonic time of the next attempt
    error: str | None = None


class Recorder:
    """One outbox, one worker, one failure policy (see the module docstring)."""

    def __init__(self, sinks: Sinks, policy: RecorderPolicy | None = None, dead_letter: Path | None = None):
        self.sinks = sinks
        self.policy = policy or RecorderPolicy()
        self.dead_letter = dead_letter
        self.queued = 0
        self.written = 0
        self.retries = 0
        self.failed = 0
        self.over_capacity = 0
        self.last_error: str | None = None
        #: the last write failed because the store does not answer (cleared by the next write that succeeds)
        self.store_down = False
        self._box: deque[_Queued] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._single = False  # after a failed transaction: one event at a time until one is written
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- producer side (the event loop) --------------------------------------------------------------
    def submit(self, events: Sequence[Event]) -> None:
        """Queue ``events`` in order; never drops them (see the policy for a full outbox)."""
        if not events:
            return
        now = time.monotonic()
        with self._cond:
            if self._thread is not None and len(self._box) >= self.policy.capacity:
                self._cond.wait_for(lambda: len(self._box) < self.policy.capacity, self.policy.block_s)
                if len(self._box) >= self.policy.capacity:
                    self.over_capacity += len(events)
                    log.error("recorder: outbox full (%d events, store failing: %s); %d more kept over capacity",
                              len(self._box), self.last_error, len(events))
            self._box.extend(_Queued(e, now) for e in events)
            self.queued += len(events)
            self._cond.notify_all()
        if self._thread is None:
            self._pump(block=False)

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Write in a worker thread from now on."""
        if self._thread is None:
            self._closing = False
            self._thread = threading.Thread(target=self._worker, name="plantlink-recorder", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event submitted so far is written (or set aside); True when the outbox is empty."""
        if self._thread is None:
            deadline = time.monotonic() + timeout
            while self._box and time.monotonic() < deadline:
                self._pump(block=True, deadline=deadline)
            return not self._box
        with self._cond:
            return self._cond.wait_for(lambda: not self._box and not self._busy, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Drain the outbox (up to ``timeout`` s), stop the worker; what is left goes to the dead letters."""
        drained = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, self.policy.max_backoff_s + 1))
            self._thread = None
        while self._box:
            item = self._box.popleft()
            self._set_aside(item, item.error or "not written before the recorder closed")
        return drained

    # -- writing ----------------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._box or self._closing)
                if self._closing:
                    return
                wait = self._box[0].due - time.monotonic()
            if wait > 0:  # the head failed: its backoff runs (a close interrupts it)
                with self._cond:
                    self._cond.wait(wait)
                continue
            self._write_some()

    def _pump(self, block: bool, deadline: float = 0.0) -> None:
        """Inline mode: write what is due; a failure ends the call unless ``block``, which sleeps out the
        backoff (never past ``deadline``)."""
        while self._box:
            wait = self._box[0].due - time.monotonic()
            if wait > 0:
                if not block or time.monotonic() + wait > deadline:
                    return
                time.sleep(wait)
            if not self._write_some() and not block:
                return

    def _write_some(self) -> bool:
        """Write the events at the head of the outbox in one transaction; False when it failed."""
        with self._cond:
            if not self._box:
                return True
            items = list(itertools.islice(self._box, 1 if self._single else self.policy.batch))
            self._busy = True
        try:
            with self.sinks.begin() as c:
                for item in items:
                    item.event.apply(c, self.sinks)
        except Exception as exc:
            for item in items:
                undo = getattr(item.event, "undo", None)
                if undo is not None:
                    undo()  # what the rolled-back transaction gave it (a row id) is not real
            if len(items) > 1:
                self._single = True  # find the failing event: retry at once, one at a time
            else:
                self._failed_attempt(items[0], exc)
            return False
        else:
            with self._cond:
                for _ in items:
                    self._box.popleft()
                self.written += len(items)
            if self.store_down:
                log.warning("recorder: the store answers again; catching up")
            self._single = self.store_down = False
            return True
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _failed_attempt(self, item: _Queued, exc: Exception) -> None:
        item.attempts += 1
        item.error = f"{type(exc).__name__}: {exc}"
        self.last_error = item.error
        self.store_down = self.sinks.unavailable(exc)
        if item.attempts >= self.policy.max_attempts and not self.store_down:
            with self._cond:
                self._box.popleft()
            self._set_aside(item, item.error)
            return
        self.retries += 1
        item.due = time.monotonic() + self.policy.backoff(item.attempts)
        if item.attempts == 1:
            log.warning("recorder: writing %s failed (%s); retrying with backoff", item.event.kind, item.error)

    def _set_aside(self, item: _Queued, error: str) -> None:
        """Count, log and keep an event that could not be written."""
        self.failed += 1
        log.error("recorder: %s not written after %d attempts (%s); kept in %s: %r", item.event.kind,
                  item.attempts, error, self.dead_letter or "the log only", item.event)
        if self.dead_letter is None:
            return
        row = {"kind": item.event.kind, "event": _plain(item.event), "error": error, "attempts": item.attempts,
               "at": time.time()}
        try:
            with open(self.dead_letter, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, default=repr) + "\n")
        except OSError:
            log.exception("recorder: the dead-letter file %s cannot be written", self.dead_letter)

    # -- health -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._cond:
            waiting = len(self._box)
            oldest = time.monotonic() - self._box[0].at if self._box else 0.0
        return {"threaded": self.threaded, "queued": self.queued, "waiting": waiting, "written": self.written,
                "retries": self.retries, "failed": self.failed, "over_capacity": self.over_capacity,
                "oldest_age_s": round(oldest, 3), "last_error": self.last_error, "store_down": self.store_down,
                "healthy": self.failed == 0 and self.over_capacity == 0 and oldest < 10.0}


def _plain(event: Event) -> Any:
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return {f.name: _plain_value(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return repr(event)


def _plain_value(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return dataclasses.asdict(v)
    if isinstance(v, list | tuple):
        return [_plain_value(x) for x in v]
    return v
