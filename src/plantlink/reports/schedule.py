"""Report schedules (the plant model's ``reports:``): after each shift, day or week of a site's calendar (site
time), the report of the period that ended, e-mailed as attachments to the schedule's e-mail targets
(``notifications.smtp``).

A thread checks every ``tick_s`` seconds (and once right after start) which schedules have a period that ended
and was not handled yet, in ``report-schedule.json`` in the data directory (per schedule: the end of the last
period handled, its outcome, the attempts of the next one). Outcomes:

* ``sent``: the e-mail was accepted by the SMTP server (audited ``export.report``, via ``schedule``);
* ``no_data``: the scope had no data in the period (the report service refuses it): nothing is sent;
* ``failed``: the report or the e-mail failed ``max_attempts`` times (one attempt per tick): given up, logged.

After a restart (or a stop of any length) only the last period that ended is reported, once, if it was not
handled; the periods before it are not caught up (a week of shift reports at once helps nobody).

An applied model (``plantlink apply``) hands the scheduler its schedules at once (:meth:`ReportScheduler.reload`):
a schedule kept goes on from its record; one added starts with the periods that end after the apply (the last
period that ended before it is recorded ``skipped``); one removed is no longer made.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantlink.errors import AnalysisError, PlantlinkError
from plantlink.identity import Principal
from plantlink.model.notify import Notifications
from plantlink.model.reports import ReportSchedule
from plantlink.samples import now_us

if TYPE_CHECKING:
    from plantlink.services import Services

log = logging.getLogger("plantlink.reports")

#: Who the scheduled reports are made as: a viewer of every site.
SCHEDULER = Principal("report-schedule", {"*": "viewer"})
RECORD_FILE = "report-schedule.json"
Mailer = Callable[[Sequence[str], str, str, Sequence[tuple[str, bytes, str]]], None]


@dataclass(frozen=True)
class Outcome:
    schedule: ReportSchedule
    start_us: int
    end_us: int
    label: str
    status: str  # sent, no_data, retry, failed
    detail: str = ""


class ReportScheduler:
    def __init__(self, schedules: Sequence[ReportSchedule], services: Callable[[], Services | None],
                 notifications: Notifications | None, record_file: Path, *, now: Callable[[], int] = now_us,
                 tick_s: float = 60.0, max_attempts: int = 5, mailer: Mailer | None = None):
        self.schedules = list(schedules)
        self.services, self.notifications = services, notifications
        self.record_file, self.now, self.tick_s, self.max_attempts = record_file, now, tick_s, max_attempts
        self.mailer = mailer or self._smtp
        self.counts = {"sent": 0, "no_data": 0, "retry": 0, "failed": 0}
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._record_lock = threading.Lock()  # the thread's passes and an apply's reload both write the record

    # -- the thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.schedules and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="plantlink-reports", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the report under way (if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a bug must not end the schedule: logged, tried at the next tick
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("report schedule pass failed")
            self._stop.wait(self.tick_s)

    def status(self) -> dict[str, Any]:
        return {"schedules": len(self.schedules), **self.counts, "last_error": self.last_error}

    def reload(self, schedules: Sequence[ReportSchedule], notifications: Notifications | None,
               now: int | None = None) -> None:
        """Take an applied model's schedules and notification targets (between two passes of the thread, which
        reads them at each pass). A schedule added starts with the periods that end after ``now``: the last one
        that ended before is recorded ``skipped``, not reported."""
        from plantlink.services.reports import period_bounds

        known = {s.key for s in self.schedules}
        svc = self.services()
        t = self.now() if now is None else now
        record = self._read()
        for s in schedules:
            if s.key in known or svc is None:
                continue
            _, end, label = period_bounds(svc.periods, s.scope.split("/", 1)[0], s.period, t)
            if record.get(s.key, {}).get("end_us", -1) < end:
                self._write(s.key, {"end_us": end, "label": label, "status": "skipped", "at_us": t, "attempts": 0,
                                    "detail": "ended before the apply that added the schedule"})
        self.schedules, self.notifications = list(schedules), notifications
        log.info("report schedules: %d after an apply", len(self.schedules))

    # -- one pass ------------------------------------------------------------------------------------
    def due(self, now: int | None = None) -> list[tuple[ReportSchedule, int, int, str]]:
        """The schedules whose last ended period (at ``now``) was not handled yet, with its bounds and label."""
        from plantlink.services.reports import period_bounds

        svc = self.services()
        if svc is None:
            return []
        t = self.now() if now is None else now
        record = self._read()
        out = []
        for s in self.schedules:
            start, end, label = period_bounds(svc.periods, s.scope.split("/", 1)[0], s.period, t)
            if record.get(s.key, {}).get("end_us", -1) < end:
                out.append((s, start, end, label))
        return out

    def run_once(self, now: int | None = None) -> list[Outcome]:
        """Make and send each due report; returns what happened to each."""
        t = self.now() if now is None else now
        out = [self._one(s, start, end, label, t) for s, start, end, label in self.due(t)]
        for o in out:
            self.counts[o.status] += 1
        return out

    def _one(self, s: ReportSchedule, start: int, end: int, label: str, now: int) -> Outcome:
        from plantlink.reports import MEDIA, filename, render
        from plantlink.reports.view import view
        from plantlink.services.reports import audit_details

        svc = self.services()
        assert svc is not None
        try:
            report = svc.reports.report(SCHEDULER, s.scope, s.period, at_us=now, now=now)
        except AnalysisError as exc:
            log.info("report %s %s, %s: not sent (%s)", s.scope, s.period, label, exc)
            return self._done(s, start, end, label, "no_data", str(exc))
        except PlantlinkError as exc:
            return self._failed(s, start, end, label, f"{type(exc).__name__}: {exc}")
        files = [(filename(report, fmt), render(report, fmt), MEDIA[fmt]) for fmt in s.formats]
        v = view(report)
        subject = f"[plantlink] {v.title}, {report.label}"
        text = "\n".join([v.title, v.subtitle, "", *(f"{k}: {x}" for k, x in v.headline), "",
                          "The report is attached (" + ", ".join(name for name, _, _ in files) + ")."]) + "\n"
        try:
            self.mailer(self._addresses(s), subject, text, files)
        except (OSError, PlantlinkError) as exc:
            return self._failed(s, start, end, label, f"{type(exc).__name__}: {exc}")
        for fmt, (_, body, _) in zip(s.formats, files, strict=True):
            svc.audit.record("export.report", SCHEDULER.name, report.site, report.scope,
                             {**audit_details(report, fmt, len(body), "schedule"), "targets": list(s.targets)})
        return self._done(s, start, end, label, "sent", subject)

    def _addresses(self, s: ReportSchedule) -> list[str]:
        targets = self.notifications.targets if self.notifications is not None else {}
        out: list[str] = []
        for name in s.targets:
            out.extend(a for a in targets[name].email if a not in out)
        return out

    def _smtp(self, to: Sequence[str], subject: str, text: str, files: Sequence[tuple[str, bytes, str]]) -> None:
        from plantlink.notify.senders import send_email_with_attachments

        if self.notifications is None or self.notifications.smtp is None:
            raise PlantlinkError("no notifications.smtp server: reports cannot be e-mailed")
        send_email_with_attachments(self.notifications.smtp, to, subject, text, files)

    # -- the record ----------------------------------------------------------------------------------
    def _done(self, s: ReportSchedule, start: int, end: int, label: str, status: str, detail: str) -> Outcome:
        self._write(s.key, {"end_us": end, "label": label, "status": status, "at_us": self.now(), "attempts": 0})
        return Outcome(s, start, end, label, status, detail)

    def _failed(self, s: ReportSchedule, start: int, end: int, label: str, error: str) -> Outcome:
        self.last_error = error
        entry = self._read().get(s.key, {})
        attempts = int(entry.get("attempts", 0)) + 1 if entry.get("pending_end_us") == end else 1
        if attempts >= self.max_attempts:
            log.error("report %s %s, %s: given up after %d attempts: %s", s.scope, s.period, label, attempts, error)
            return self._done(s, start, end, label, "failed", error)
        log.warning("report %s %s, %s: attempt %d failed (tried again in %g s): %s", s.scope, s.period, label,
                    attempts, self.tick_s, error)
        self._write(s.key, {**entry, "pending_end_us": end, "attempts": attempts, "error": error})
        return Outcome(s, start, end, label, "retry", error)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            found = json.loads(self.record_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("%s cannot be read (%s): every schedule's last period is reported again", self.record_file, exc)
            return {}
        return found if isinstance(found, dict) else {}

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        with self._record_lock:
            record = self._read()
            record[key] = entry
            tmp = self.record_file.with_name(self.record_file.name + ".part")
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.record_file)
