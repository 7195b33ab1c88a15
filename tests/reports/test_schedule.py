"""Report schedules on a clock the test drives (no sleeping): the shift report is e-mailed once after the shift
ends, to a real SMTP server (aiosmtpd on a free port), its attachments read back; a period without data is
not sent; after a restart only a missed last period is sent; a failing SMTP server is retried, then given up;
the runtime runs the schedule the plant model declares."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from plantlink.model import parse_plant
from plantlink.model.plan_text import render
from plantlink.model.reports import ReportSchedule
from plantlink.reports.schedule import RECORD_FILE, ReportScheduler
from plantlink.runtime import Runtime
from tests.api.test_oee_downtime import local_us
from tests.conftest import _free_port
from tests.reports.cases import LINE, REPORT_PLANT, craft_report
from tests.reports.test_reports import parse
from tests.servers import SmtpInbox


def notifications(port: int) -> str:
    return (f"notifications:\n  smtp: {{host: 127.0.0.1, port: {port}, sender: plantlink@test.local, timeout: 5}}\n"
            "  targets:\n    maint: {email: [maint@test.local, lead@test.local]}\n")


SCHEDULES = "reports:\n  - {scope: windsor/a1/l1, period: shift, formats: [pdf, html], targets: [maint]}\n"


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    box = SmtpInbox(_free_port()).start()
    yield box
    box.stop()


def scheduler(rt: Runtime, port: int, record: Path, **kw: Any) -> ReportScheduler:
    plant = parse_plant(REPORT_PLANT + notifications(port) + SCHEDULES, "schedule.yaml")
    return ReportScheduler(plant.spec.reports, lambda: rt.services, plant.spec.notifications, record,
                           now=lambda: local_us(23), **kw)


def attachments(msg: Message) -> dict[str, bytes]:
    return {str(p.get_filename()): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}


async def test_the_shift_report_is_mailed_once_after_the_shift(runtime: Runtime, inbox: SmtpInbox,
                                                               tmp_path: Path) -> None:
    from pypdf import PdfReader

    await craft_report(runtime)
    s = scheduler(runtime, inbox.port, tmp_path / RECORD_FILE)
    # 13:59: shift A of 03-10 runs; the last one ended (03-09) has no data: handled, nothing sent
    first = s.run_once(local_us(13, 59))
    assert [(o.status, o.label) for o in first] == [("no_data", "shift A of 2026-03-09")]
    assert "no data for windsor/a1/l1 in shift A of 2026-03-09" in first[0].detail and inbox.messages == []
    assert s.run_once(local_us(13, 59) + 30_000_000) == []  # handled: not again
    # 14:00:30: shift A of 03-10 ended
    sent = s.run_once(local_us(14, 0) + 30_000_000)
    assert [(o.status, o.start_us, o.end_us) for o in sent] == [("sent", local_us(6), local_us(14))]
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "maint@test.local, lead@test.local"
    assert msg["Subject"] == "[plantlink] Line report: windsor/a1/l1, shift A of 2026-03-10"
    files = attachments(msg)
    assert set(files) == {"report-windsor-a1-l1-shift-2026-03-10.pdf", "report-windsor-a1-l1-shift-2026-03-10.html"}
    page = parse(files["report-windsor-a1-l1-shift-2026-03-10.html"])
    assert page.figures["OEE"] == "84.9 %" and page.figures["Cost of losses"] == "2,508.00 CAD"
    pdf = PdfReader(io.BytesIO(files["report-windsor-a1-l1-shift-2026-03-10.pdf"]))
    text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "OEE 84.9 %" in text and text.index("No blanks") < text.index("Jam Mechanical")
    body = next(p for p in msg.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
    assert "OEE: 84.9 %" in body.get_payload(decode=True).decode()
    assert s.run_once(local_us(15)) == [] and len(inbox.messages) == 1  # once only
    # a restart finds the record: nothing again; without it, the missed last period once
    again = scheduler(runtime, inbox.port, tmp_path / RECORD_FILE)
    assert again.run_once(local_us(16)) == []
    fresh = scheduler(runtime, inbox.port, tmp_path / "other.json")
    assert [o.status for o in fresh.run_once(local_us(16))] == ["sent"] and len(inbox.messages) == 2
    assert fresh.run_once(local_us(17)) == []
    log = runtime.audit
    assert log is not None
    audited = [r for r in log.query(kind="export.report") if r.details.get("via") == "schedule"]
    assert len(audited) == 4 and {r.details["format"] for r in audited} == {"pdf", "html"}
    assert audited[0].details["targets"] == ["maint"] and audited[0].actor == "report-schedule"


async def test_smtp_down_is_retried_then_given_up(runtime: Runtime, tmp_path: Path) -> None:
    await craft_report(runtime)
    port = _free_port()  # nothing listens there
    s = scheduler(runtime, port, tmp_path / RECORD_FILE, max_attempts=3)
    after = local_us(14, 1)
    assert [o.status for o in s.run_once(after)] == ["retry"]
    assert "ConnectionRefusedError" in (s.last_error or "")
    inbox = SmtpInbox(port).start()  # the server is back: the next tick sends it
    try:
        assert [o.status for o in s.run_once(after + 60_000_000)] == ["sent"] and len(inbox.messages) == 1
    finally:
        inbox.stop()
    # next day's shift, the server down for good: tried max_attempts times, then given up (not retried forever)
    s2 = scheduler(runtime, _free_port(), tmp_path / "two.json", max_attempts=3)
    outcomes = [o.status for k in range(4) for o in s2.run_once(after + k * 60_000_000)]
    assert outcomes == ["retry", "retry", "failed"] and s2.counts["failed"] == 1


def test_the_schedule_needs_a_known_scope_and_e_mail_targets() -> None:
    plant = parse_plant(REPORT_PLANT + notifications(25) + SCHEDULES, "schedule.yaml")
    assert plant.spec.reports == [ReportSchedule(scope=LINE, period="shift", formats=["pdf", "html"],
                                                 targets=["maint"])]


async def test_the_runtime_runs_the_declared_schedule(tmp_path: Path, inbox: SmtpInbox) -> None:
    plant = parse_plant(REPORT_PLANT + notifications(inbox.port) + SCHEDULES, "schedule.yaml")
    rt = Runtime(plant, tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        assert "report schedule" in rt.running and rt.report_schedule is not None
        assert rt.report_schedule.schedules == plant.spec.reports
    finally:
        await rt.stop()
    assert "report schedule" not in rt.running


async def test_an_applied_schedule_starts_after_the_apply_and_a_kept_one_goes_on(runtime: Runtime,
                                                                                 inbox: SmtpInbox,
                                                                                 tmp_path: Path) -> None:
    """``reload`` (what an apply hands the scheduler): an added schedule does not report the period that ended
    before the apply, and reports the next one; a kept one goes on from its record (nothing sent twice); a
    removed one is no longer made."""
    await craft_report(runtime)
    plant = parse_plant(REPORT_PLANT + notifications(inbox.port) + SCHEDULES, "schedule.yaml")
    added = ReportScheduler([], lambda: runtime.services, None, tmp_path / RECORD_FILE, now=lambda: local_us(23))
    assert added.run_once(local_us(14, 30)) == []
    added.reload(plant.spec.reports, plant.spec.notifications, now=local_us(14, 30))  # shift A ended at 14:00
    assert added.schedules == plant.spec.reports
    assert added.run_once(local_us(14, 31)) == [] and inbox.messages == []  # not the shift before the apply
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    (entry,) = record.values()
    assert (entry["status"], entry["end_us"], entry["label"]) == ("skipped", local_us(14), "shift A of 2026-03-10")
    nxt = added.run_once(local_us(14, day=11) + 30_000_000)  # the next shift ended: reported
    assert [(o.status, o.label) for o in nxt] == [("sent", "shift A of 2026-03-11")]
    assert [m["Subject"] for m in inbox.messages] == ["[plantlink] Line report: windsor/a1/l1, shift A of 2026-03-11"]

    kept = scheduler(runtime, inbox.port, tmp_path / "kept.json")
    assert [o.status for o in kept.run_once(local_us(14, 0) + 30_000_000)] == ["sent"]
    kept.reload(plant.spec.reports, plant.spec.notifications, now=local_us(14, 1))
    assert kept.run_once(local_us(14, 2)) == [] and len(inbox.messages) == 2  # kept: not sent again
    kept.reload([], plant.spec.notifications, now=local_us(14, 3))  # removed
    assert kept.run_once(local_us(14, day=11) + 30_000_000) == [] and kept.schedules == []


async def test_an_apply_hands_the_running_plant_its_report_schedules(tmp_path: Path, inbox: SmtpInbox) -> None:
    """End to end through the model service: a model that adds ``reports:`` starts the schedule in the running
    plant (no restart; the plan says so), one that removes them leaves it with none; stopped with the plant."""
    from plantlink.identity import Principal
    from plantlink.services import services_of

    erin = Principal("erin", {"*": "engineer"})
    without = REPORT_PLANT + notifications(inbox.port)
    rt = Runtime(parse_plant(without, "schedule.yaml"), tmp_path / "data", flush_interval=0.2)
    await rt.start()
    try:
        assert rt.report_schedule is None and "report schedule" not in rt.running
        model = services_of(rt).model
        text = render(model.plan(erin, without + SCHEDULES).to_dict())
        assert "report schedules take it at once" in text and "next restart" not in text
        assert (await model.apply(erin, without + SCHEDULES)).applied
        sched = rt.report_schedule
        assert sched is not None and sched.schedules == rt.plant.spec.reports and len(sched.schedules) == 1
        assert "report schedule" in rt.running and sched._thread is not None and sched._thread.is_alive()
        record = json.loads((rt.data_dir / RECORD_FILE).read_text())
        assert [e["status"] for e in record.values()] == ["skipped"]  # the last period before the apply
        assert (await model.apply(erin, without)).applied
        assert rt.report_schedule is sched and sched.schedules == []
    finally:
        await rt.stop()
    assert "report schedule" not in rt.running and sched._thread is None
    assert inbox.messages == []
